//! USSD in AT syntax (TS 27.007 §7.15): the request `AT+CUSD=1,"<code>",<dcs>`, the cancel
//! `AT+CUSD=2`, and the answer `+CUSD: <m>[,<str>[,<dcs>]]`, which arrives as a URC after the
//! request's `OK` (the classifier already treats `+CUSD:` as one).
//!
//! The answer's text may hold commas, quotes the modem did not escape, and line ends (operator
//! menus are several lines): the AT engine joins the lines of one answer until its closing
//! quote ([`ParseError::Incomplete`] tells it one is still open), so a `+CUSD` URC reaches the
//! driver whole. What the text means, given its dcs, is decoded by `crate::pdu::ussd`; this file
//! knows the syntax only.

use std::fmt;

/// The longest USSD string: 182 septets (TS 23.038 §6.1.2.3.1, 160 octets packed).
pub const MAX_CODE_CHARS: usize = 182;

/// A request string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("a USSD code is not empty: give one such as *100#")]
    Empty,
    #[error("{0:?} is not a USSD code: use digits, * and # (and + for a number), such as *100#")]
    Invalid(String),
    #[error("a USSD code has at most {MAX_CODE_CHARS} characters")]
    TooLong,
}

/// `AT+CUSD=1,"<code>",<dcs>`: asks the network, with result codes on (`<n>` = 1). The code
/// is checked so nothing but a USSD string reaches the command line (no quote, no `;`).
pub fn request(code: &str, dcs: u8) -> Result<String, RequestError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(RequestError::Empty);
    }
    if code.chars().count() > MAX_CODE_CHARS {
        return Err(RequestError::TooLong);
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
    {
        return Err(RequestError::Invalid(code.to_owned()));
    }
    Ok(format!("AT+CUSD=1,\"{code}\",{dcs}"))
}

/// `AT+CUSD=2`: ends the USSD session (an open menu, or a request still waiting).
pub const CANCEL: &str = "AT+CUSD=2";

/// `<m>` of `+CUSD` (TS 27.007 §7.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: no further user action required (the answer).
    Done,
    /// 1: further user action required (a menu waits for a reply).
    ActionRequired,
    /// 2: the network ended the session.
    TerminatedByNetwork,
    /// 3: another local client has responded.
    OtherClient,
    /// 4: operation not supported (an unknown code, or the network does not offer USSD).
    NotSupported,
    /// 5: the network timed out.
    NetworkTimeout,
    /// Any other value.
    Other(u8),
}

impl Status {
    fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Done,
            1 => Self::ActionRequired,
            2 => Self::TerminatedByNetwork,
            3 => Self::OtherClient,
            4 => Self::NotSupported,
            5 => Self::NetworkTimeout,
            other => Self::Other(other),
        }
    }

    /// The `<m>` number.
    pub fn code(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::ActionRequired => 1,
            Self::TerminatedByNetwork => 2,
            Self::OtherClient => 3,
            Self::NotSupported => 4,
            Self::NetworkTimeout => 5,
            Self::Other(other) => other,
        }
    }

    /// Whether the network answered with a text to show (0 and 1).
    pub fn is_answer(self) -> bool {
        matches!(self, Self::Done | Self::ActionRequired)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done => f.write_str("answered"),
            Self::ActionRequired => f.write_str("answered with a menu that waits for a reply"),
            Self::TerminatedByNetwork => f.write_str("the network ended the session"),
            Self::OtherClient => f.write_str("another client on the modem answered"),
            Self::NotSupported => {
                f.write_str("the network does not support this code (check the code)")
            }
            Self::NetworkTimeout => f.write_str("the network did not answer in time"),
            Self::Other(code) => write!(f, "unknown USSD status {code}"),
        }
    }
}

/// One `+CUSD` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// `<str>` as the modem printed it (still encoded: see `crate::pdu::ussd::decode`).
    pub text: Option<String>,
    pub dcs: Option<u8>,
}

/// Why a line is not a whole `+CUSD` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a +CUSD line")]
    NotCusd,
    /// The text's closing quote has not come yet: the answer goes on on the next line.
    #[error("the +CUSD text goes on on the next line")]
    Incomplete,
    #[error("malformed +CUSD line: {0}")]
    Malformed(String),
}

/// Parses `+CUSD: <m>[,<str>[,<dcs>]]`. The text runs from the first quote to the last
/// quote on the line (quotes inside it are kept: some modems do not escape them).
pub fn parse(line: &str) -> Result<Answer, ParseError> {
    let rest = line
        .trim_start()
        .strip_prefix("+CUSD:")
        .ok_or(ParseError::NotCusd)?
        .trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code: u8 = digits
        .parse()
        .map_err(|_| ParseError::Malformed(format!("no status number in {line:?}")))?;
    let status = Status::from_code(code);
    let rest = rest[digits.len()..].trim_start();
    if rest.trim().is_empty() {
        return Ok(Answer {
            status,
            text: None,
            dcs: None,
        });
    }
    let rest = rest
        .strip_prefix(',')
        .ok_or_else(|| ParseError::Malformed(format!("expected a comma after {code}")))?
        .trim_start();
    let Some(body) = rest.strip_prefix('"') else {
        // An unquoted text (rare): up to a final `,<dcs>`.
        return Ok(unquoted(status, rest));
    };
    let Some(close) = body.rfind('"') else {
        return Err(ParseError::Incomplete);
    };
    let text = &body[..close];
    let tail = body[close + 1..].trim();
    let dcs = match tail.strip_prefix(',') {
        None if tail.is_empty() => None,
        None => {
            return Err(ParseError::Malformed(format!(
                "unexpected {tail:?} after the text"
            )));
        }
        Some(dcs) => Some(dcs.trim().parse::<u8>().map_err(|_| {
            ParseError::Malformed(format!("the dcs {:?} is not a number", dcs.trim()))
        })?),
    };
    Ok(Answer {
        status,
        text: Some(text.to_owned()),
        dcs,
    })
}

fn unquoted(status: Status, rest: &str) -> Answer {
    let (text, dcs) = match rest.rsplit_once(',') {
        Some((text, dcs)) if dcs.trim().parse::<u8>().is_ok() => {
            (text.trim(), dcs.trim().parse().ok())
        }
        _ => (rest.trim(), None),
    };
    Answer {
        status,
        text: Some(text.to_owned()),
        dcs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        assert_eq!(
            request("*100#", 15),
            Ok("AT+CUSD=1,\"*100#\",15".to_owned())
        );
        assert_eq!(
            request(" *123*1# ", 15),
            Ok("AT+CUSD=1,\"*123*1#\",15".to_owned())
        );
        assert_eq!(request("", 15), Err(RequestError::Empty));
        for bad in ["*100#\";AT+CFUN=0", "*100#;", "balance", "*1 0#"] {
            assert!(
                matches!(request(bad, 15), Err(RequestError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(request(&"1".repeat(183), 15), Err(RequestError::TooLong));
    }

    #[test]
    fn answers_as_modems_print_them() {
        let answer = parse("+CUSD: 0,\"Your balance is 12.50 USD\",15").expect("parses");
        assert_eq!(answer.status, Status::Done);
        assert_eq!(answer.text.as_deref(), Some("Your balance is 12.50 USD"));
        assert_eq!(answer.dcs, Some(15));
        // Huawei: packed hex, no space after the colon.
        let answer = parse("+CUSD:0,\"AA180C3602\",15").expect("parses");
        assert_eq!(answer.text.as_deref(), Some("AA180C3602"));
        // UCS-2 hex with dcs 72.
        assert_eq!(
            parse("+CUSD: 0,\"00480069\",72").expect("parses").dcs,
            Some(72)
        );
        // Commas and an unescaped quote inside the text.
        let answer = parse("+CUSD: 1,\"Bal: 1,50; say \"hi\", ok\",15").expect("parses");
        assert_eq!(answer.text.as_deref(), Some("Bal: 1,50; say \"hi\", ok"));
        assert_eq!(answer.status, Status::ActionRequired);
        // Without a dcs, and with only a status.
        assert_eq!(parse("+CUSD: 2,\"Bye\"").expect("parses").dcs, None);
        let answer = parse("+CUSD: 4").expect("parses");
        assert_eq!((answer.status, answer.text), (Status::NotSupported, None));
        assert_eq!(parse("+CUSD: 9").expect("parses").status, Status::Other(9));
        // Unquoted text (seen on old Siemens firmware).
        let answer = parse("+CUSD: 0,Balance 5.00,15").expect("parses");
        assert_eq!(
            (answer.text.as_deref(), answer.dcs),
            (Some("Balance 5.00"), Some(15))
        );
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        assert_eq!(parse("+CMTI: \"SM\",1"), Err(ParseError::NotCusd));
        assert_eq!(parse("+CUSD: 0,\"open"), Err(ParseError::Incomplete));
        for bad in [
            "+CUSD:",
            "+CUSD: x",
            "+CUSD: 0 \"x\"",
            "+CUSD: 0,\"x\",dcs",
            "+CUSD: 0,\"x\" y",
        ] {
            assert!(matches!(parse(bad), Err(ParseError::Malformed(_))), "{bad}");
        }
        assert!(parse("+CUSD: 999").is_err());
    }
}
