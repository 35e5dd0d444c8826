//! The pseudo-terminal the simulated modem sits behind, and the stable link that points at it.
//!
//! The master side is ours (raw, non-blocking, driven through tokio's [`AsyncFd`]); the slave side
//! is the "serial port" a client opens by path, exactly as it opens `/dev/ttyUSB2`. We keep no
//! slave descriptor open: reading the master then fails with `EIO` while no client has the port
//! open, which is how we know that nobody is listening (a real modem's bytes go nowhere then, and
//! a client that opens the port later must not find stale output waiting). The slave starts in
//! raw mode, so plain clients (`cat`, `screen`, a file) see bytes as the modem sends them;
//! clients such as tokio-serial set their own termios (speed, flow control) on the slave, which
//! Linux accepts on a pty and which survive close and reopen.
//!
//! The link is a symlink (like `/dev/serial/by-id/…`) replaced atomically on open and removed on
//! close, so a client sees the device vanish on unplug and reappear on replug.
//!
//! It does not interpret bytes or pace them; see `line` and `interpreter`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{self, SetArg};
use tokio::io::unix::AsyncFd;

/// What one read of the master gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many bytes from the client.
    Data(usize),
    /// No client has the port open.
    NoClient,
}

/// One pseudo-terminal pair and its link.
#[derive(Debug)]
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    slave_path: PathBuf,
    link: Option<PathBuf>,
    /// Whether a client had the port open at the last read.
    client: AtomicBool,
}

impl Pty {
    /// Opens a new pty pair and points `link` (if any) at its slave.
    pub fn open(link: Option<&Path>) -> io::Result<Arc<Pty>> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        for fd in [pair.master.as_fd(), pair.slave.as_fd()] {
            let mut settings = termios::tcgetattr(fd).map_err(io::Error::from)?;
            termios::cfmakeraw(&mut settings);
            termios::tcsetattr(fd, SetArg::TCSANOW, &settings).map_err(io::Error::from)?;
        }
        let slave_path = nix::unistd::ttyname(pair.slave.as_fd()).map_err(io::Error::from)?;
        let flags = fcntl(pair.master.as_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(pair.master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // Our slave descriptor closes here: see the module documentation.
        drop(pair.slave);
        // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged until it is dropped, and
        // the `AsyncFd` owns it for its whole life.
        let master = unsafe { AsyncFd::register(pair.master) }.map_err(|e| e.into_parts().1)?;
        if let Some(link) = link {
            replace_link(link, &slave_path)?;
        }
        Ok(Arc::new(Pty {
            master,
            slave_path,
            link: link.map(Path::to_path_buf),
            client: AtomicBool::new(false),
        }))
    }

    /// The slave device (`/dev/pts/N`).
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// What a client should open: the link if there is one, else the slave.
    pub fn path(&self) -> PathBuf {
        self.link.clone().unwrap_or_else(|| self.slave_path.clone())
    }

    /// Whether a client had the port open when last seen.
    pub fn has_client(&self) -> bool {
        self.client.load(Ordering::Relaxed)
    }

    /// Reads what the client wrote. Returns [`Read::NoClient`] at once while nobody has the
    /// port open (the caller polls).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<Read> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(Ok(0)) => return self.no_client(),
                Ok(Ok(n)) => {
                    self.client.store(true, Ordering::Relaxed);
                    return Ok(Read::Data(n));
                }
                Ok(Err(error)) if error.raw_os_error() == Some(Errno::EIO as i32) => {
                    return self.no_client();
                }
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {
                    // Nothing to read, so the slave is open.
                    self.client.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    fn no_client(&self) -> io::Result<Read> {
        self.client.store(false, Ordering::Relaxed);
        Ok(Read::NoClient)
    }

    /// Writes all of `bytes` to the client; drops them when no client has the port open.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if !self.has_client() {
                return Ok(());
            }
            let mut guard = self.master.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(io::Error::from))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(error)) if error.raw_os_error() == Some(Errno::EIO as i32) => {
                    self.client.store(false, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// The master's descriptor number, for log lines.
    pub fn fd(&self) -> i32 {
        self.master.get_ref().as_raw_fd()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Remove the link only while it still points at this pty: a newer one may own it.
        if let Some(link) = &self.link
            && std::fs::read_link(link).is_ok_and(|target| target == self.slave_path)
        {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Points `link` at `target`, atomically (a symlink beside it, renamed over it).
fn replace_link(link: &Path, target: &Path) -> io::Result<()> {
    let name = link
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the link has no file name"))?;
    let mut temporary = name.to_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = link.with_file_name(temporary);
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)?;
    std::fs::rename(&temporary, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    async fn read_data(pty: &Pty, buf: &mut [u8]) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no data");
            match pty.read(buf).await.expect("read") {
                Read::Data(n) => return n,
                Read::NoClient => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    #[tokio::test]
    async fn client_bytes_both_ways_and_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("modem");
        let pty = Pty::open(Some(&link)).expect("open pty");
        assert_eq!(pty.path(), link);
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());

        let mut buf = [0u8; 64];
        assert_eq!(pty.read(&mut buf).await.expect("read"), Read::NoClient);
        // Output with no client is dropped, not left for the next client.
        pty.write_all(b"stale").await.expect("write");

        for round in 0..2 {
            let mut client = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&link)
                .expect("open slave");
            client.write_all(b"AT\r").expect("client write");
            let n = read_data(&pty, &mut buf).await;
            assert_eq!(&buf[..n], b"AT\r", "round {round}");
            pty.write_all(b"\r\nOK\r\n").await.expect("write");
            let mut answer = [0u8; 6];
            client.read_exact(&mut answer).expect("client read");
            assert_eq!(&answer, b"\r\nOK\r\n");
            drop(client);
            // Closed: the master says so.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while pty.read(&mut buf).await.expect("read") != Read::NoClient {
                assert!(tokio::time::Instant::now() < deadline);
            }
        }
        drop(pty);
        assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    }
}
