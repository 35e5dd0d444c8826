//! The pseudo-terminal the simulated modem sits behind, and the stable link that points at it.
//!
//! The master side is ours (raw, non-blocking); the slave side is the "serial port" a client
//! opens by path, exactly as it opens `/dev/ttyUSB2`. We keep no slave descriptor open: reading
//! the master then fails with `EIO` while no client has the port open, which is how we know that
//! nobody is listening (a real modem's bytes go nowhere then, and a client that opens the port
//! later must not find stale output waiting). While a client has the port open, a [`Watch`]
//! (tokio's [`AsyncFd`]) wakes the reader for its input; while none has, the caller polls. The slave starts in
//! raw mode, so plain clients (`cat`, `screen`, a file) see bytes as the modem sends them;
//! clients such as tokio-serial set their own termios (speed, flow control) on the slave, which
//! Linux accepts on a pty and which survive close and reopen.
//!
//! The link is a symlink (like `/dev/serial/by-id/…`) replaced atomically on open and removed on
//! close, so a client sees the device vanish on unplug and reappear on replug.
//!
//! It does not interpret bytes or pace them; see `line` and `interpreter`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{self, SetArg};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What one read of the master gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many bytes from the client.
    Data(usize),
    /// A client has the port open but sent nothing yet.
    Nothing,
    /// No client has the port open.
    NoClient,
}

/// What one write to the master did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// This many bytes went out.
    Bytes(usize),
    /// The client's input buffer is full (it is not reading).
    Full,
    /// No client has the port open: the bytes went nowhere.
    NoClient,
}

/// One pseudo-terminal pair and its link.
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
    slave_path: PathBuf,
    link: Option<PathBuf>,
    /// Whether a client had the port open at the last read.
    client: AtomicBool,
}

/// The master's descriptor, kept open by the `Arc` for as long as tokio watches it.
struct Master(Arc<Pty>);

impl AsRawFd for Master {
    fn as_raw_fd(&self) -> RawFd {
        self.0.master.as_raw_fd()
    }
}

/// Readiness of the master while one client has the port open.
///
/// A fresh registration per client: once the slave hangs up, tokio keeps the "closed" readiness
/// of a registration for good, so a registration must not outlive the client it watched.
pub struct Watch(AsyncFd<Master>);

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
        if let Some(link) = link {
            replace_link(link, &slave_path)?;
        }
        Ok(Arc::new(Pty {
            master: pair.master,
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

    /// Reads what the client wrote, without waiting.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Read> {
        let read = match nix::unistd::read(&self.master, buf) {
            // EIO: no slave descriptor is open.
            Ok(0) | Err(Errno::EIO) => Read::NoClient,
            Ok(n) => Read::Data(n),
            Err(Errno::EAGAIN) => Read::Nothing,
            Err(errno) => return Err(errno.into()),
        };
        self.client.store(read != Read::NoClient, Ordering::Relaxed);
        Ok(read)
    }

    /// Writes what it can of `bytes`, without waiting.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<Written> {
        if !self.has_client() {
            return Ok(Written::NoClient);
        }
        match nix::unistd::write(&self.master, bytes) {
            Ok(n) => Ok(Written::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Written::Full),
            Err(Errno::EIO) => {
                self.client.store(false, Ordering::Relaxed);
                Ok(Written::NoClient)
            }
            Err(errno) => Err(errno.into()),
        }
    }

    /// Starts watching the master for input; call while a client has the port open.
    pub fn watch(self: &Arc<Self>) -> io::Result<Watch> {
        // SAFETY: `Master` holds an `Arc` of this pty, whose `OwnedFd` therefore stays open and
        // unchanged for as long as the registration exists.
        let fd =
            unsafe { AsyncFd::register_with_interest(Master(self.clone()), Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
        Ok(Watch(fd))
    }

    /// The master's descriptor number, for log lines.
    pub fn fd(&self) -> i32 {
        self.master.as_raw_fd()
    }
}

impl Watch {
    /// Waits for input (or the client hanging up), then reads it.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<Read> {
        loop {
            let mut guard = self.0.readable().await?;
            let pty = &guard.get_inner().0;
            match pty.try_read(buf)? {
                Read::Nothing => guard.clear_ready(),
                other => return Ok(other),
            }
        }
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

    #[tokio::test]
    async fn client_bytes_both_ways_and_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("modem");
        let pty = Pty::open(Some(&link)).expect("open pty");
        assert_eq!(pty.path(), link);
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());

        let mut buf = [0u8; 64];
        assert_eq!(pty.try_read(&mut buf).expect("read"), Read::NoClient);
        // Output with no client is dropped, not left for the next client.
        assert_eq!(pty.try_write(b"stale").expect("write"), Written::NoClient);

        for round in 0..2 {
            let mut client = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&link)
                .expect("open slave");
            assert_eq!(pty.try_read(&mut buf).expect("read"), Read::Nothing);
            let watch = pty.watch().expect("watch");
            client.write_all(b"AT\r").expect("client write");
            let Read::Data(n) = watch.read(&mut buf).await.expect("read") else {
                panic!("no data");
            };
            assert_eq!(&buf[..n], b"AT\r", "round {round}");
            assert_eq!(
                pty.try_write(b"\r\nOK\r\n").expect("write"),
                Written::Bytes(6)
            );
            let mut answer = [0u8; 6];
            client.read_exact(&mut answer).expect("client read");
            assert_eq!(&answer, b"\r\nOK\r\n");
            drop(client);
            // Closed: the watch wakes up and the read says so.
            assert_eq!(watch.read(&mut buf).await.expect("read"), Read::NoClient);
        }
        drop(pty);
        assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    }
}
