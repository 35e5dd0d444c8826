//! Opening a modem wherever it is: a serial device on this machine, or a modem another machine
//! exports with ser2net in raw TCP mode (`port = "tcp://HOST:PORT"`), as one byte stream
//! ([`Transport`]: `AsyncRead + AsyncWrite`) that [`crate::at::spawn`] runs on unchanged.
//!
//! A TCP connection is made with a connect timeout (name resolution included), `TCP_NODELAY`
//! (AT commands are a few bytes each and the engine waits for their answer: Nagle's algorithm
//! would hold each one back for an acknowledgement), keepalive probes, so that a peer gone
//! silent (the other Pi lost power or its network: no FIN ever comes) is noticed while the
//! line is idle, and `TCP_USER_TIMEOUT`, so that bytes written and never acknowledged fail in
//! the same time rather than after the kernel's quarter of an hour of retransmissions.
//!
//! A connection that ends (ser2net stopped or restarted, the other Pi rebooted, another client
//! took the port with ser2net's `kickolduser`) reads as end of file, which the AT engine reports
//! as [`crate::at::AtError::Closed`]; a reset or a keepalive timeout is a read error,
//! [`crate::at::AtError::Io`]. Either is what an unplugged serial modem gives, so recovery
//! treats both alike.
//!
//! It does not retry, back off or reconnect (the driver's recovery does, as for a serial
//! device that went away), and it speaks raw TCP only: ser2net's telnet and RFC 2217 modes are
//! refused when the setting is parsed ([`Endpoint::parse`]). The [`Endpoint`] type itself lives
//! in [`crate::config`], which checks the setting without the modem layer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use crate::config::Endpoint;

use super::ModemError;
use super::port::{self, SerialPort};

/// How a TCP endpoint is connected and watched. The defaults suit a modem on another Pi of the
/// same LAN or VPN; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpOptions {
    /// Longest time for name resolution and the TCP handshake together.
    pub connect_timeout: Duration,
    /// Idle time before the first keepalive probe.
    pub keepalive_idle: Duration,
    /// Time between keepalive probes.
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is declared dead.
    pub keepalive_retries: u32,
    /// Longest time written bytes may stay unacknowledged before the connection is declared
    /// dead.
    pub user_timeout: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        // A silent peer is noticed within idle + interval × retries = 30 s while idle, and
        // within 30 s of a write while busy: well inside `AT+CMGS`'s timeout, and long enough
        // that a Wi-Fi hiccup does not drop a working connection.
        Self {
            connect_timeout: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(5),
            keepalive_retries: 3,
            user_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an endpoint could not be opened, in words that say where to look.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The serial device could not be opened (absent, busy, no permission …).
    #[error(transparent)]
    Serial(ModemError),
    /// The host name does not resolve.
    #[error(
        "cannot connect to {endpoint}: the name {host:?} does not resolve ({message}); check \
         the name, or write the other machine's IP address"
    )]
    Resolve {
        endpoint: String,
        host: String,
        message: String,
    },
    /// No connection came up.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// The connection came up but its socket options could not be set.
    #[error("cannot set up the connection to {endpoint}: {message}")]
    Setup { endpoint: String, message: String },
}

/// An open modem line: a serial port, or a TCP connection to ser2net.
pub enum Transport {
    Serial(SerialPort),
    Tcp(TcpStream),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Serial(_) => f.write_str("Transport::Serial"),
            Transport::Tcp(stream) => f.debug_tuple("Transport::Tcp").field(stream).finish(),
        }
    }
}

impl Transport {
    /// `true` for a TCP connection.
    pub fn is_remote(&self) -> bool {
        matches!(self, Transport::Tcp(_))
    }
}

/// Opens `endpoint`: a serial device at `baud` (8N1, no flow control), or a TCP connection set
/// up as `tcp` says (the line speed of a remote modem is ser2net's, set on its side).
pub async fn open(
    endpoint: &Endpoint,
    baud: u32,
    tcp: &TcpOptions,
) -> Result<Transport, EndpointError> {
    match endpoint {
        Endpoint::Serial(path) => port::open(path, baud)
            .map(Transport::Serial)
            .map_err(EndpointError::Serial),
        Endpoint::Tcp { host, port } => connect(endpoint, host, *port, tcp)
            .await
            .map(Transport::Tcp),
    }
}

async fn connect(
    endpoint: &Endpoint,
    host: &str,
    port: u16,
    options: &TcpOptions,
) -> Result<TcpStream, EndpointError> {
    let shown = endpoint.to_string();
    let deadline = Instant::now() + options.connect_timeout;
    let no_answer = || EndpointError::Connect {
        endpoint: shown.clone(),
        reason: format!(
            "no answer within {} (is {host} up and on this network, and does a firewall let \
             port {port} through?)",
            humantime::format_duration(options.connect_timeout)
        ),
    };
    let addresses: Vec<_> =
        match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_elapsed) => return Err(no_answer()),
            Ok(Err(error)) => {
                return Err(EndpointError::Resolve {
                    endpoint: shown.clone(),
                    host: host.to_owned(),
                    message: error.to_string(),
                });
            }
            Ok(Ok(addresses)) => addresses.collect(),
        };
    let mut last_error = None;
    for address in addresses {
        match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
            Err(_elapsed) => return Err(no_answer()),
            Ok(Ok(stream)) => {
                configure(&stream, options).map_err(|error| EndpointError::Setup {
                    endpoint: shown.clone(),
                    message: error.to_string(),
                })?;
                tracing::debug!(endpoint = %shown, %address, "connected");
                return Ok(stream);
            }
            Ok(Err(error)) => last_error = Some(error),
        }
    }
    let reason = match last_error {
        None => format!("{host:?} resolves to no address"),
        Some(error) => connect_reason(&error, host, port),
    };
    Err(EndpointError::Connect {
        endpoint: shown,
        reason,
    })
}

/// What a failed connect means for the operator.
fn connect_reason(error: &io::Error, host: &str, port: u16) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => format!(
            "nothing listens on port {port} of {host} (is ser2net running there, with an \
             accepter on tcp port {port}?)"
        ),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            format!("{host} cannot be reached from here ({error}: check the network or the VPN)")
        }
        io::ErrorKind::TimedOut => format!(
            "{host} did not answer ({error}: is it up, and does a firewall let port {port} \
             through?)"
        ),
        _ => error.to_string(),
    }
}

fn configure(stream: &TcpStream, options: &TcpOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = SockRef::from(stream);
    socket.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(options.keepalive_idle)
            .with_interval(options.keepalive_interval)
            .with_retries(options.keepalive_retries),
    )?;
    socket.set_tcp_user_timeout(Some(options.user_timeout))?;
    Ok(())
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Serial(port) => Pin::new(port).poll_read(cx, buf),
            Transport::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Serial(port) => Pin::new(port).poll_write(cx, bytes),
            Transport::Tcp(stream) => Pin::new(stream).poll_write(cx, bytes),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Serial(port) => Pin::new(port).poll_flush(cx),
            Transport::Tcp(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Serial(port) => Pin::new(port).poll_shutdown(cx),
            Transport::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::at::{self, AtConfig, AtError};

    fn tcp(port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    /// A port nothing listens on (bound, then released).
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address").port()
    }

    #[tokio::test]
    async fn a_tcp_modem_answers_through_the_engine_and_its_hang_up_reads_as_a_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        // A one-command "modem" behind the port: answers `AT`, then hangs up as ser2net does
        // when it stops.
        let modem = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut command = [0u8; 3];
            socket.read_exact(&mut command).await.expect("command");
            assert_eq!(&command, b"AT\r");
            socket.write_all(b"\r\nOK\r\n").await.expect("answer");
        });
        let options = TcpOptions::default();
        let transport = open(&tcp(port), 115_200, &options).await.expect("connects");
        let Transport::Tcp(stream) = &transport else {
            panic!("a TCP endpoint opens a TCP transport");
        };
        assert!(transport.is_remote());
        assert!(stream.nodelay().expect("nodelay"), "TCP_NODELAY is set");
        let socket = SockRef::from(stream);
        assert!(socket.keepalive().expect("keepalive"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("idle"),
            options.keepalive_idle
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("interval"),
            options.keepalive_interval
        );
        assert_eq!(
            socket.tcp_keepalive_retries().expect("retries"),
            options.keepalive_retries
        );
        assert_eq!(
            socket.tcp_user_timeout().expect("user timeout"),
            Some(options.user_timeout)
        );

        let (handle, _urcs, task) = at::spawn(transport, AtConfig::default());
        handle
            .command("AT", Duration::from_secs(10))
            .await
            .expect("OK through TCP");
        modem.await.expect("the modem side ran");
        let ended = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the engine notices the hang-up")
            .expect("the engine task");
        assert!(
            matches!(ended, AtError::Closed | AtError::Io(_)),
            "a dropped connection ends the engine like an unplug: {ended:?}"
        );
        assert!(ended.is_fatal());
        let after = handle.command("AT", Duration::from_secs(1)).await;
        assert!(matches!(after, Err(AtError::Closed)), "{after:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_said_in_words() {
        let port = closed_port().await;
        let error = open(&tcp(port), 115_200, &TcpOptions::default())
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot connect to tcp://127.0.0.1:{port}: nothing listens on port {port}"
            )),
            "{text}"
        );
        assert!(text.contains("ser2net"), "{text}");
    }

    #[tokio::test]
    async fn a_silent_host_times_out_in_words() {
        // A listener that never accepts, its backlog already full: further handshakes get no
        // answer, as from a machine that is off.
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("socket");
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        socket.listen(0).expect("listen");
        let address = socket
            .local_addr()
            .expect("address")
            .as_socket()
            .expect("inet");
        let options = TcpOptions {
            connect_timeout: Duration::from_millis(500),
            ..TcpOptions::default()
        };
        // Fill the accept queue (its length is backlog + 1 on Linux), then one more.
        let mut held = Vec::new();
        let mut outcome = None;
        for _ in 0..8 {
            match open(&tcp(address.port()), 115_200, &options).await {
                Ok(transport) => held.push(transport),
                Err(error) => {
                    outcome = Some(error);
                    break;
                }
            }
        }
        let error = outcome.expect("a full backlog leaves a handshake unanswered");
        let text = error.to_string();
        assert!(text.contains("no answer within 500ms"), "{text}");
        assert!(text.contains("firewall"), "{text}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_said_in_words() {
        let endpoint = Endpoint::Tcp {
            host: "modem-pi.invalid".into(),
            port: 4001,
        };
        let options = TcpOptions {
            connect_timeout: Duration::from_secs(20),
            ..TcpOptions::default()
        };
        let error = open(&endpoint, 115_200, &options)
            .await
            .expect_err("RFC 6761: .invalid never resolves");
        let text = error.to_string();
        assert!(
            text.contains("\"modem-pi.invalid\" does not resolve")
                || text.contains("no answer within"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_serial_endpoint_opens_the_device_and_a_missing_one_says_so() {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        let transport = open(&Endpoint::Serial(slave), 115_200, &TcpOptions::default())
            .await
            .expect("a pty opens");
        assert!(!transport.is_remote());
        let error = open(
            &Endpoint::Serial("/dev/serial/by-id/usb-absent-if02-port0".into()),
            115_200,
            &TcpOptions::default(),
        )
        .await
        .expect_err("absent");
        let text = error.to_string();
        assert!(
            text.starts_with("cannot open /dev/serial/by-id/usb-absent-if02-port0"),
            "{text}"
        );
    }
}
