//! The syntax of a modem's `port` setting: a serial device on this machine, or
//! `tcp://HOST:PORT` for a modem another machine exports with ser2net in raw TCP mode.
//!
//! Pure parsing, so `check-config` can refuse a malformed setting without opening anything.
//! Opening an [`Endpoint`] is [`crate::modem::endpoint`]'s job; the type lives here because the
//! configuration is checked below the modem layer.
//!
//! Only `tcp://` is a network scheme: ser2net's `telnet` and RFC 2217 modes interleave telnet
//! negotiation (IAC sequences) with the modem's bytes, which an AT stream cannot carry, so
//! `telnet://` and `rfc2217://` are refused with the ser2net setting to use instead.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// Where a modem is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A serial device on this machine (prefer a stable `/dev/serial/by-id/…` link).
    Serial(PathBuf),
    /// A raw TCP port, as ser2net's `accepter: tcp,HOST,PORT` serves a modem on another
    /// machine. `host` is a name, an IPv4 address or an IPv6 address (without brackets).
    Tcp { host: String, port: u16 },
}

/// The URL scheme of a modem behind ser2net.
pub const TCP_SCHEME: &str = "tcp://";

impl Endpoint {
    /// Parses a `port` setting. The error says what is wrong and what a valid setting looks
    /// like; it does not name the key (the caller does).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(
                "is empty: give the modem's device (/dev/serial/by-id/…) or \
                        tcp://HOST:PORT for a modem behind ser2net"
                    .into(),
            );
        }
        if trimmed != text {
            return Err(format!("{text:?} has spaces around it"));
        }
        if let Some(rest) = strip_prefix_ignore_case(text, TCP_SCHEME) {
            return parse_tcp(text, rest);
        }
        if let Some(scheme_end) = text.find("://") {
            let scheme = &text[..scheme_end];
            let advice = match scheme.to_ascii_lowercase().as_str() {
                "telnet" | "rfc2217" => {
                    "ser2net's telnet and RFC 2217 modes mix telnet negotiation into the modem's \
                     bytes; configure its accepter as raw tcp (accepter: tcp,HOST,PORT) and \
                     write tcp://HOST:PORT here"
                }
                _ => {
                    "the only network scheme is tcp:// (a modem exported by ser2net in raw TCP mode)"
                }
            };
            return Err(format!("{text:?}: {scheme}:// is not supported: {advice}"));
        }
        if !text.starts_with('/') {
            let hint = if looks_like_host_port(text) {
                format!("; for a modem behind ser2net write tcp://{text}")
            } else {
                String::new()
            };
            return Err(format!(
                "{text:?} is not an absolute device path such as \
                 /dev/serial/by-id/usb-…-if02-port0{hint}"
            ));
        }
        Ok(Endpoint::Serial(PathBuf::from(text)))
    }

    /// `true` for a modem on another machine.
    pub fn is_remote(&self) -> bool {
        matches!(self, Endpoint::Tcp { .. })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => {
                write!(f, "{TCP_SCHEME}[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => write!(f, "{TCP_SCHEME}{host}:{port}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(text)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `HOST:PORT` after `tcp://`.
fn parse_tcp(text: &str, rest: &str) -> Result<Endpoint, String> {
    let malformed = |why: &str| {
        Err(format!(
            "{text:?} is not tcp://HOST:PORT ({why}), e.g. tcp://192.168.1.21:4001 or \
             tcp://modem-pi.local:4001"
        ))
    };
    if rest.is_empty() {
        return malformed("the host and port are missing");
    }
    if rest.contains(['/', '?', '#']) {
        return malformed("nothing may follow the port: no path, query or fragment");
    }
    if rest.contains('@') {
        return malformed("ser2net's raw TCP has no user or password");
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return malformed("an IPv6 address needs its closing ]");
        };
        if address.parse::<Ipv6Addr>().is_err() {
            return malformed("the part in [ ] is not an IPv6 address");
        }
        let Some(port) = after.strip_prefix(':') else {
            return malformed("the port is missing");
        };
        (address, port)
    } else {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return malformed("the port is missing");
        };
        if host.contains(':') {
            return malformed("an IPv6 address goes in brackets: tcp://[fd00::21]:4001");
        }
        (host, port)
    };
    if host.is_empty() {
        return malformed("the host is missing");
    }
    if !is_hostname(host) && host.parse::<Ipv6Addr>().is_err() {
        return malformed("the host is not a valid name or address");
    }
    if port.is_empty() {
        return malformed("the port is missing");
    }
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return malformed("the port is not a number");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => malformed("the port must be between 1 and 65535"),
        Ok(port) => Ok(Endpoint::Tcp {
            host: host.to_ascii_lowercase(),
            port,
        }),
    }
}

/// A DNS name or an IPv4 address in dotted form (RFC 1123 §2.1: letters, digits and hyphens,
/// labels of 1 to 63 characters not starting or ending with a hyphen, 253 in all).
fn is_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `192.168.1.21:4001`, `modem-pi:4001`: what an operator may write without the scheme.
fn looks_like_host_port(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| {
        is_hostname(host) && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn settings_that_parse() {
        for (text, expected) in [
            (
                "/dev/serial/by-id/usb-HUAWEI_Mobile-if00-port0",
                Endpoint::Serial("/dev/serial/by-id/usb-HUAWEI_Mobile-if00-port0".into()),
            ),
            ("/dev/ttyUSB2", Endpoint::Serial("/dev/ttyUSB2".into())),
            ("tcp://192.168.1.21:4001", tcp("192.168.1.21", 4001)),
            ("tcp://modem-pi.local:4001", tcp("modem-pi.local", 4001)),
            ("TCP://Modem-Pi:1", tcp("modem-pi", 1)),
            ("tcp://[fd00::21]:65535", tcp("fd00::21", 65535)),
            ("tcp://localhost:2000", tcp("localhost", 2000)),
        ] {
            assert_eq!(Endpoint::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn display_gives_back_a_setting_that_parses_the_same() {
        for text in [
            "/dev/ttyUSB2",
            "tcp://192.168.1.21:4001",
            "tcp://[fd00::21]:4001",
            "tcp://modem-pi.local:4001",
        ] {
            let endpoint = Endpoint::parse(text).expect(text);
            assert_eq!(endpoint.to_string(), text);
            assert_eq!(Endpoint::parse(&endpoint.to_string()), Ok(endpoint));
        }
    }

    #[test]
    fn malformed_settings_say_why() {
        for (text, why) in [
            ("", "is empty"),
            (" /dev/ttyUSB2", "spaces"),
            ("tcp://", "host and port are missing"),
            ("tcp://:4001", "host is missing"),
            ("tcp://192.168.1.21", "port is missing"),
            ("tcp://192.168.1.21:", "port is missing"),
            ("tcp://192.168.1.21:0", "between 1 and 65535"),
            ("tcp://192.168.1.21:65536", "between 1 and 65535"),
            ("tcp://192.168.1.21:99999999999", "between 1 and 65535"),
            ("tcp://192.168.1.21:-1", "not a number"),
            ("tcp://192.168.1.21:ser2net", "not a number"),
            ("tcp://192.168.1.21:4001/", "no path"),
            ("tcp://192.168.1.21:4001/modem", "no path"),
            ("tcp://192.168.1.21:4001?baud=9600", "no path"),
            ("tcp://pi@192.168.1.21:4001", "no user"),
            ("tcp://fd00::21:4001", "in brackets"),
            ("tcp://[fd00::21:4001", "closing ]"),
            ("tcp://[fd00::21]", "port is missing"),
            ("tcp://[not-v6]:4001", "not an IPv6 address"),
            ("tcp://modem pi:4001", "not a valid name"),
            ("tcp://-modem:4001", "not a valid name"),
            ("tcp://modem..pi:4001", "not a valid name"),
            ("telnet://192.168.1.21:4001", "accepter: tcp,HOST,PORT"),
            ("rfc2217://192.168.1.21:4001", "raw tcp"),
            ("udp://192.168.1.21:4001", "only network scheme is tcp://"),
            ("ttyUSB2", "not an absolute device path"),
            ("192.168.1.21:4001", "write tcp://192.168.1.21:4001"),
        ] {
            let error = Endpoint::parse(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }
}
