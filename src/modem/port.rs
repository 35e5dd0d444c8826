//! Opening the serial device.
//!
//! tokio-serial (serialport-rs) configures the line with the Linux `termios2` ioctls
//! (`TCGETS2`/`TCSETS2`). A few environments answer those with `ENOSYS` — user-mode emulators
//! such as `qemu-aarch64` (how CI runs the Raspberry Pi build) and some old vendor kernels —
//! while the classic `TCGETS`/`TCSETS` work. The port therefore opens with tokio-serial first,
//! and only when that fails with `ENOSYS` falls back to the same settings (8N1, raw, no flow
//! control, the configured speed) made with POSIX termios, the file driven by tokio's
//! [`AsyncFd`]. On a real modem the first path is taken and nothing else changes.
//!
//! Either way the open device is locked (`flock`, exclusive, non-blocking; serialport-rs does
//! it on its path, this file on the termios one): one program at a time drives a modem.
//! `TIOCEXCL` alone does not stop root, so without the lock `sudo smsgate doctor` (or
//! `smsgate ussd`, or a second daemon) beside the running daemon would interleave its AT
//! commands with the daemon's; with it, the second one is refused at once with
//! [`ModemError::InUse`]. The lock goes with the descriptor, also when the process is killed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ModemError;

/// An open serial line: through tokio-serial, or through classic termios where `termios2` is
/// not available.
pub enum SerialPort {
    Native(tokio_serial::SerialStream),
    Termios(AsyncFd<File>),
}

/// Opens the serial device at `baud` (8N1, no flow control: what USB modems expect).
pub(crate) fn open(path: &Path, baud: u32) -> Result<SerialPort, ModemError> {
    use tokio_serial::SerialPortBuilderExt;
    let failed = |message: String| ModemError::Open {
        path: path.display().to_string(),
        message,
    };
    let native = tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async();
    let in_use = || ModemError::InUse {
        path: path.display().to_string(),
    };
    match native {
        Ok(stream) => Ok(SerialPort::Native(stream)),
        Err(error) if is_not_implemented(&error) => {
            tracing::debug!(%error, "termios2 is not available; configuring the line with termios");
            let port = open_with_termios(path, baud).map_err(|error| failed(error.to_string()))?;
            if let SerialPort::Termios(file) = &port {
                if !lock(file.get_ref().as_raw_fd()) {
                    return Err(in_use());
                }
            }
            Ok(port)
        }
        // serialport-rs takes the same lock itself and says so in these words; EBUSY is
        // another program's TIOCEXCL.
        Err(error)
            if error.description.contains("exclusive lock")
                || error.description.contains("Device or resource busy") =>
        {
            Err(in_use())
        }
        Err(error) => Err(failed(error.to_string())),
    }
}

/// The lock described above, as serialport-rs takes it on its own path: false when another
/// program holds it. A device or file system that does not do locks opens as before.
fn lock(fd: RawFd) -> bool {
    // SAFETY: `fd` is the open descriptor of the port just opened, owned by it; `flock` only
    // reads it.
    let result = unsafe { nix::libc::flock(fd, nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
    if result == 0 {
        return true;
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock {
        return false;
    }
    tracing::debug!(%error, "the port cannot be locked; opened without the lock");
    true
}

fn is_not_implemented(error: &tokio_serial::Error) -> bool {
    matches!(
        error.kind,
        tokio_serial::ErrorKind::Io(io::ErrorKind::Unsupported)
    ) || error.description.contains("Function not implemented")
}

fn open_with_termios(path: &Path, baud: u32) -> io::Result<SerialPort> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc_flags())
        .open(path)?;
    let mut settings = termios::tcgetattr(file.as_fd())?;
    termios::cfmakeraw(&mut settings);
    settings.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    settings.control_flags &=
        !(ControlFlags::CSTOPB | ControlFlags::PARENB | ControlFlags::CRTSCTS);
    let speed = baud_rate(baud)?;
    termios::cfsetispeed(&mut settings, speed)?;
    termios::cfsetospeed(&mut settings, speed)?;
    termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &settings)?;
    // SAFETY: the `File` is moved into the registration, so its descriptor stays open and is
    // not reused for as long as the `AsyncFd` exists, and nothing else holds it.
    let registered = unsafe { AsyncFd::register(file) }.map_err(|error| error.into_parts().1)?;
    Ok(SerialPort::Termios(registered))
}

/// `O_NOCTTY | O_NONBLOCK`: the modem must not become our controlling terminal, and reads are
/// driven by readiness.
fn libc_flags() -> i32 {
    (nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_NONBLOCK).bits()
}

fn baud_rate(baud: u32) -> io::Result<BaudRate> {
    Ok(match baud {
        9_600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        460_800 => BaudRate::B460800,
        921_600 => BaudRate::B921600,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{other} baud is not a standard line speed"),
            ));
        }
    })
}

impl AsyncRead for SerialPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SerialPort::Native(stream) => Pin::new(stream).poll_read(cx, buf),
            SerialPort::Termios(fd) => loop {
                let mut guard = ready!(fd.poll_read_ready(cx))?;
                let unfilled = buf.initialize_unfilled();
                match guard.try_io(|inner| inner.get_ref().read(unfilled)) {
                    Ok(Ok(read)) => {
                        buf.advance(read);
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(error)) => return Poll::Ready(Err(error)),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

impl AsyncWrite for SerialPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SerialPort::Native(stream) => Pin::new(stream).poll_write(cx, bytes),
            SerialPort::Termios(fd) => loop {
                let mut guard = ready!(fd.poll_write_ready(cx))?;
                match guard.try_io(|inner| inner.get_ref().write(bytes)) {
                    Ok(result) => return Poll::Ready(result),
                    Err(_would_block) => continue,
                }
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SerialPort::Native(stream) => Pin::new(stream).poll_flush(cx),
            SerialPort::Termios(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SerialPort::Native(stream) => Pin::new(stream).poll_shutdown(cx),
            SerialPort::Termios(_) => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_speeds_map_and_odd_ones_are_refused() {
        assert!(matches!(baud_rate(115_200), Ok(BaudRate::B115200)));
        assert!(matches!(baud_rate(9_600), Ok(BaudRate::B9600)));
        assert!(baud_rate(12_345).is_err());
    }

    /// The fallback path on a real pty: what the driver gets under an emulator.
    #[tokio::test]
    async fn the_termios_path_reads_and_writes_a_pty() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        let mut port = open_with_termios(&slave, 115_200).expect("open with termios");
        let mut master = File::from(pty.master);
        port.write_all(b"AT\r").await.expect("write");
        let mut seen = [0u8; 3];
        master.read_exact(&mut seen).expect("master reads");
        assert_eq!(&seen, b"AT\r");
        master.write_all(b"\r\nOK\r\n").expect("master writes");
        let mut answer = [0u8; 6];
        port.read_exact(&mut answer).await.expect("read");
        assert_eq!(&answer, b"\r\nOK\r\n");
    }
}
