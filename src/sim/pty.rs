//! The pseudo-terminal the simulated modem sits behind, and the stable link that points at it.
//!
//! The master side is ours (raw, non-blocking); the slave side is the "serial port" a client
//! opens by path, exactly as it opens `/dev/ttyUSB2`. The slave starts in raw mode, so plain
//! clients (`cat`, `screen`, a file) see bytes as the modem sends them; clients such as
//! tokio-serial set their own termios (speed, flow control), which Linux accepts on a pty.
//!
//! A real serial device is released when its last user closes it; a pty slave is not while
//! the master is open. Two things follow, and this module makes up for both:
//! - `TIOCEXCL` outlives the client that set it (tokio-serial sets it on open and never clears
//!   it), so the client's next open would fail with `EBUSY` unless it runs as root. We keep our
//!   own slave descriptor and clear the flag (`TIOCNXCL`) when the last client closes, and
//!   already whenever the client sends something: a client that closes and at once reopens
//!   would otherwise race our noticing the close. The price: exclusivity between two clients at
//!   the same time is not enforced.
//! - bytes written while nobody has the port open would wait for the next client. We track
//!   clients with inotify (open and close of the slave device) and drop output while there is
//!   none, and discard what the last client left unread when it goes.
//!
//! Holding a slave descriptor also means the master never sees a hang-up, so one [`AsyncFd`]
//! serves the whole life of the pty.
//!
//! The link is a symlink (like `/dev/serial/by-id/…`) replaced atomically on open and removed on
//! close, so a client sees the device vanish on unplug and reappear on replug.
//!
//! It does not interpret bytes or pace them; see `line` and `interpreter`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::termios::{self, FlushArg, SetArg};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

nix::ioctl_none_bad!(
    /// `TIOCNXCL`: the tty may be opened again by anyone (tty_ioctl(4)).
    clear_exclusive,
    nix::libc::TIOCNXCL
);

/// What one read of the master gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// This many bytes from the client.
    Data(usize),
    /// Nothing to read yet.
    Nothing,
}

/// What one write to the master did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// This many bytes went out.
    Bytes(usize),
    /// The client's input buffer is full (it is not reading).
    Full,
    /// No client has the port open: the bytes went nowhere.
    NoClient,
}

/// What happened on the port, as [`Pty::next`] reports it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    /// The client wrote this many bytes (now in the buffer).
    Data(usize),
    /// A client opened the port.
    Opened,
    /// The last client closed the port.
    Closed,
}

/// A raw descriptor tokio can watch; the [`OwnedFd`] it comes from outlives it (both live in
/// the same [`Pty`], the watcher declared first so it is dropped first).
struct Raw(RawFd);

impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// One pseudo-terminal pair and its link.
pub(crate) struct Pty {
    // Watchers first: struct fields drop in order, and they must go before their descriptors.
    master_ready: AsyncFd<Raw>,
    opens_ready: AsyncFd<Raw>,
    master: OwnedFd,
    /// Our own slave descriptor: keeps the tty as it is between clients, and lets us reset it.
    slave: OwnedFd,
    opens: Inotify,
    slave_path: PathBuf,
    link: Option<PathBuf>,
    /// Clients with the port open, as inotify counted them.
    clients: AtomicUsize,
    /// Set when a client's bytes arrive before inotify reported its open.
    seen: AtomicBool,
}

impl std::fmt::Debug for Pty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pty")
            .field("slave_path", &self.slave_path)
            .field("link", &self.link)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl Pty {
    /// Opens a new pty pair and points `link` (if any) at its slave. Needs a tokio runtime.
    pub(crate) fn open(link: Option<&Path>) -> io::Result<Pty> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        // openpty(3) leaves both ends inheritable: a child process started meanwhile (a daemon
        // under test) would keep the pair open, and an unplug would never reach its client.
        for fd in [pair.master.as_fd(), pair.slave.as_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
        }
        for fd in [pair.master.as_fd(), pair.slave.as_fd()] {
            let mut settings = termios::tcgetattr(fd).map_err(io::Error::from)?;
            termios::cfmakeraw(&mut settings);
            termios::tcsetattr(fd, SetArg::TCSANOW, &settings).map_err(io::Error::from)?;
        }
        let slave_path = nix::unistd::ttyname(pair.slave.as_fd()).map_err(io::Error::from)?;
        let flags = fcntl(pair.master.as_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(pair.master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        let opens = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(io::Error::from)?;
        opens
            .add_watch(
                &slave_path,
                AddWatchFlags::IN_OPEN | AddWatchFlags::IN_CLOSE,
            )
            .map_err(io::Error::from)?;
        // SAFETY: both descriptors are owned by the `Pty` built below, which drops these
        // registrations before it closes them (field order).
        let master_ready = unsafe {
            AsyncFd::register_with_interest(Raw(pair.master.as_raw_fd()), Interest::READABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        // SAFETY: as above.
        let opens_ready = unsafe {
            AsyncFd::register_with_interest(Raw(opens.as_fd().as_raw_fd()), Interest::READABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        if let Some(link) = link {
            replace_link(link, &slave_path)?;
        }
        Ok(Pty {
            master_ready,
            opens_ready,
            master: pair.master,
            slave: pair.slave,
            opens,
            slave_path,
            link: link.map(Path::to_path_buf),
            clients: AtomicUsize::new(0),
            seen: AtomicBool::new(false),
        })
    }

    /// The slave device (`/dev/pts/N`).
    pub(crate) fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// What a client should open: the link if there is one, else the slave.
    pub(crate) fn path(&self) -> PathBuf {
        self.link.clone().unwrap_or_else(|| self.slave_path.clone())
    }

    /// Whether a client has the port open.
    pub(crate) fn has_client(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0 || self.seen.load(Ordering::Relaxed)
    }

    /// Reads what the client wrote, without waiting.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<Read> {
        match nix::unistd::read(&self.master, buf) {
            Ok(0) | Err(Errno::EAGAIN) => Ok(Read::Nothing),
            Ok(n) => {
                self.seen.store(true, Ordering::Relaxed);
                self.clear_exclusive();
                Ok(Read::Data(n))
            }
            Err(errno) => Err(errno.into()),
        }
    }

    /// Writes what it can of `bytes`, without waiting.
    pub(crate) fn try_write(&self, bytes: &[u8]) -> io::Result<Written> {
        if !self.has_client() {
            return Ok(Written::NoClient);
        }
        match nix::unistd::write(&self.master, bytes) {
            Ok(n) => Ok(Written::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Written::Full),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Waits for the next thing to happen on the port: client bytes (read into `buf`), or a
    /// client opening or the last one closing.
    pub(crate) async fn next(&self, buf: &mut [u8]) -> io::Result<Activity> {
        loop {
            tokio::select! {
                // Opens and closes first: a close must be seen before the bytes of the
                // client that reopens right after it (see `release`).
                biased;
                ready = self.opens_ready.readable() => {
                    let mut guard = ready?;
                    let events = match self.opens.read_events() {
                        Ok(events) => events,
                        Err(Errno::EAGAIN) => {
                            guard.clear_ready();
                            continue;
                        }
                        Err(errno) => return Err(errno.into()),
                    };
                    if let Some(activity) = self.count(&events) {
                        return Ok(activity);
                    }
                }
                ready = self.master_ready.readable() => {
                    let mut guard = ready?;
                    match self.try_read(buf)? {
                        Read::Data(n) => return Ok(Activity::Data(n)),
                        Read::Nothing => guard.clear_ready(),
                    }
                }
            }
        }
    }

    /// Counts opens and closes; on the last close releases the port as a real device is
    /// released: exclusivity cleared, unread output discarded.
    fn count(&self, events: &[nix::sys::inotify::InotifyEvent]) -> Option<Activity> {
        let mut activity = None;
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_OPEN) {
                if self.clients.fetch_add(1, Ordering::Relaxed) == 0 {
                    activity = Some(Activity::Opened);
                }
            } else if event.mask.intersects(AddWatchFlags::IN_CLOSE) {
                let before = self.clients.load(Ordering::Relaxed);
                let after = before.saturating_sub(1);
                self.clients.store(after, Ordering::Relaxed);
                if before > 0 && after == 0 {
                    self.release();
                    activity = Some(Activity::Closed);
                }
            }
        }
        activity
    }

    fn release(&self) {
        self.seen.store(false, Ordering::Relaxed);
        self.clear_exclusive();
        // Bytes a real device sent while nobody read them are gone with the port.
        let _ = termios::tcflush(&self.slave, FlushArg::TCIFLUSH);
    }

    /// Lets the port be opened again whoever set `TIOCEXCL` on it.
    fn clear_exclusive(&self) {
        // SAFETY: TIOCNXCL takes no argument; the descriptor is our open slave.
        if let Err(errno) = unsafe { clear_exclusive(self.slave.as_raw_fd()) } {
            tracing::debug!(%errno, "cannot clear the pty's exclusive flag");
        }
    }

    /// The master's descriptor number, for log lines.
    pub(crate) fn fd(&self) -> i32 {
        self.master.as_raw_fd()
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

    nix::ioctl_read_bad!(
        /// `TIOCGEXCL`: whether the tty is in exclusive mode.
        get_exclusive,
        nix::libc::TIOCGEXCL,
        nix::libc::c_int
    );

    fn exclusive(pty: &Pty) -> bool {
        let mut flag = 0;
        // SAFETY: TIOCGEXCL writes one int; the descriptor is the pty's open slave.
        unsafe { get_exclusive(pty.slave.as_raw_fd(), &mut flag) }.expect("TIOCGEXCL");
        flag != 0
    }

    async fn next(pty: &Pty, buf: &mut [u8]) -> Activity {
        tokio::time::timeout(Duration::from_secs(5), pty.next(buf))
            .await
            .expect("activity in time")
            .expect("no error")
    }

    #[tokio::test]
    async fn client_bytes_both_ways_opens_closes_and_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("modem");
        let pty = Pty::open(Some(&link)).expect("open pty");
        assert_eq!(pty.path(), link);
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());

        let mut buf = [0u8; 64];
        assert!(!pty.has_client());
        // Output with no client is dropped, not left for the next client.
        assert_eq!(pty.try_write(b"stale").expect("write"), Written::NoClient);

        for round in 0..3 {
            let mut client = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&link)
                .expect("open slave");
            assert_eq!(
                next(&pty, &mut buf).await,
                Activity::Opened,
                "round {round}"
            );
            assert!(pty.has_client());
            // The way serial libraries open a port: exclusive.
            // SAFETY: TIOCEXCL takes no argument.
            nix::ioctl_none_bad!(set_exclusive, nix::libc::TIOCEXCL);
            unsafe { set_exclusive(client.as_raw_fd()) }.expect("TIOCEXCL");
            assert!(exclusive(&pty));
            client.write_all(b"AT\r").expect("client write");
            assert_eq!(next(&pty, &mut buf).await, Activity::Data(3));
            assert_eq!(&buf[..3], b"AT\r");
            assert_eq!(
                pty.try_write(b"\r\nOK\r\n").expect("write"),
                Written::Bytes(6)
            );
            let mut answer = [0u8; 6];
            client.read_exact(&mut answer).expect("client read");
            assert_eq!(&answer, b"\r\nOK\r\n");
            // Left unread when the client goes: discarded.
            pty.try_write(b"unread").expect("write");
            // The flag a departed client left would lock out its next open (unless root).
            unsafe { set_exclusive(pty.slave.as_raw_fd()) }.expect("TIOCEXCL");
            drop(client);
            assert_eq!(next(&pty, &mut buf).await, Activity::Closed);
            assert!(!pty.has_client());
            assert!(!exclusive(&pty), "released like a real device");
            let mut unread = [0u8; 16];
            fcntl(pty.slave.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("non-blocking");
            assert_eq!(
                nix::unistd::read(&pty.slave, &mut unread),
                Err(Errno::EAGAIN),
                "unread output discarded"
            );
        }
        drop(pty);
        assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    }
}
