//! Errors of the SMS driver, and the `+CMS ERROR` / `+CME ERROR` codes in words.
//!
//! `+CMS ERROR` codes are TS 27.005 §3.2.5: 0…127 are the RP causes of TS 24.011 §E.2, 128…255
//! the TP-FCS values of TS 23.040 §9.2.3.22, 300…500 the modem's own, 512 and up vendor codes.
//! `+CME ERROR` codes are TS 27.007 §9.2. Each send error is classified: *temporary* (trying
//! again later may work: network, congestion, busy, storage) or *permanent* (this message to
//! this number will fail the same way: bad number, barring, no subscription, a refused PDU).
//!
//! This module does not retry anything; the driver and the outbox decide what to do.

use std::fmt;

use crate::at::{AtError, ErrorCode, FinalResult};

/// What a failed send means for the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SendErrorKind {
    /// Trying again later may work (network, congestion, modem busy, not ready).
    Temporary,
    /// This part will fail the same way every time (invalid number, barred, no credit).
    Permanent,
    /// No `+CMGS` answer: the part may or may not have gone.
    Unknown,
}

impl fmt::Display for SendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendErrorKind::Temporary => "temporary",
            SendErrorKind::Permanent => "permanent",
            SendErrorKind::Unknown => "unknown",
        })
    }
}

/// A part that was not accepted, with the modem's code and human words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{message} ({kind})")]
pub struct SendError {
    pub kind: SendErrorKind,
    /// The `+CMS ERROR` / `+CME ERROR` code, when the modem gave a number.
    pub code: Option<u16>,
    /// Human words, e.g. "+CMS ERROR 38: network out of order".
    pub message: String,
}

impl SendError {
    pub(crate) fn temporary(message: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Temporary,
            code: None,
            message: message.into(),
        }
    }

    pub(crate) fn unknown(message: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Unknown,
            code: None,
            message: message.into(),
        }
    }

    /// Classifies the final result of a refused `AT+CMGS`.
    pub fn from_result(result: &FinalResult) -> Self {
        match result {
            FinalResult::CmsError(code) => {
                let (code, words) = resolve(code, CMS);
                let kind = code.map_or(SendErrorKind::Temporary, cms_kind);
                Self {
                    kind,
                    code,
                    message: describe("+CMS ERROR", code, &words),
                }
            }
            FinalResult::CmeError(code) => {
                let (code, words) = resolve(code, CME);
                let kind = match code {
                    // Operation not supported, invalid characters, string too long: the PDU.
                    Some(4 | 24 | 25 | 26 | 27) => SendErrorKind::Permanent,
                    _ => SendErrorKind::Temporary,
                };
                Self {
                    kind,
                    code,
                    message: describe("+CME ERROR", code, &words),
                }
            }
            // A plain `ERROR` (`AT+CMEE=0` modems) says nothing; try again later.
            other => Self::temporary(format!("the modem answered {other}")),
        }
    }

    /// Classifies any engine error of a send.
    pub(crate) fn from_at(error: &AtError) -> Self {
        match error {
            AtError::Rejected { result, .. } => Self::from_result(result),
            AtError::Timeout { timeout, .. } => Self::unknown(format!(
                "no +CMGS answer within {timeout:?}: the part may or may not have gone"
            )),
            other => Self::unknown(format!(
                "{other} during AT+CMGS: the part may or may not have gone"
            )),
        }
    }
}

fn describe(prefix: &str, code: Option<u16>, words: &str) -> String {
    match code {
        Some(code) => format!("{prefix} {code}: {words}"),
        None => format!("{prefix}: {words}"),
    }
}

/// The number and words of an error code, whether the modem gave the number (`AT+CMEE=1`) or
/// the words (`AT+CMEE=2`).
fn resolve(code: &ErrorCode, table: &[(u16, &'static str)]) -> (Option<u16>, String) {
    match code {
        ErrorCode::Numeric(number) => {
            let words = explain_in(table, *number).or(match number {
                512.. => Some("manufacturer specific error"),
                _ => None,
            });
            (Some(*number), words.unwrap_or("unknown error").to_owned())
        }
        ErrorCode::Verbose(text) => {
            let number = table
                .iter()
                .find(|(_, words)| words.eq_ignore_ascii_case(text))
                .map(|&(number, _)| number);
            (number, text.clone())
        }
    }
}

fn explain_in(table: &[(u16, &'static str)], code: u16) -> Option<&'static str> {
    table
        .iter()
        .find(|&&(number, _)| number == code)
        .map(|&(_, words)| words)
}

/// The words for a `+CME ERROR` code (TS 27.007 §9.2), `None` for unlisted codes.
pub fn explain_cme(code: u16) -> Option<&'static str> {
    explain_in(CME, code)
}

/// Temporary or permanent, for a `+CMS ERROR` code of a send.
pub(crate) fn cms_kind(code: u16) -> SendErrorKind {
    use SendErrorKind::{Permanent, Temporary};
    match code {
        // TS 24.011 §E.2 RP causes about the destination or the subscription.
        1 | 8 | 10 | 21 | 28 | 29 | 30 | 50 | 69 | 95 | 96 | 97 | 99 => Permanent,
        // TS 23.040 §9.2.3.22: TP-PID, TP-DCS and TP-Command errors, TPDU refused, no
        // SC subscription, invalid or barred destination, duplicate, validity not supported.
        128..=191 | 193 | 195..=199 => Permanent,
        // TS 27.005 §3.2.5: operation not supported, invalid PDU/text parameters.
        303..=305 => Permanent,
        _ => Temporary,
    }
}

/// `true` for codes that mean "busy, ask again in a moment" rather than a fault.
pub(crate) fn is_busy(result: &FinalResult) -> bool {
    match result {
        FinalResult::CmeError(code) => matches!(
            resolve(code, CME).0,
            // SIM busy (TS 27.007 §9.2.1); 515 is the vendor "please wait, init or command
            // processing in progress" of Qualcomm-based modems (Quectel, Sierra, Huawei).
            Some(14 | 515)
        ),
        FinalResult::CmsError(code) => matches!(
            resolve(code, CMS).0,
            // (U)SIM busy, SIM Toolkit busy, and the same vendor 515.
            Some(314 | 212 | 515)
        ),
        _ => false,
    }
}

/// TS 27.005 §3.2.5 `<err>` values with their TS 24.011 / TS 23.040 meanings.
const CMS: &[(u16, &str)] = &[
    (1, "unassigned (unallocated) number"),
    (8, "operator determined barring"),
    (10, "call barred"),
    (17, "network failure"),
    (21, "short message transfer rejected"),
    (22, "memory capacity exceeded"),
    (27, "destination out of service"),
    (28, "unidentified subscriber"),
    (29, "facility rejected"),
    (30, "unknown subscriber"),
    (38, "network out of order"),
    (41, "temporary failure"),
    (42, "congestion"),
    (47, "resources unavailable, unspecified"),
    (50, "requested facility not subscribed"),
    (69, "requested facility not implemented"),
    (81, "invalid short message transfer reference value"),
    (95, "invalid message, unspecified"),
    (96, "invalid mandatory information"),
    (97, "message type non-existent or not implemented"),
    (
        98,
        "message not compatible with short message protocol state",
    ),
    (99, "information element non-existent or not implemented"),
    (111, "protocol error, unspecified"),
    (127, "interworking, unspecified"),
    (128, "telematic interworking not supported"),
    (129, "short message type 0 not supported"),
    (130, "cannot replace short message"),
    (143, "unspecified TP-PID error"),
    (144, "data coding scheme (alphabet) not supported"),
    (145, "message class not supported"),
    (159, "unspecified TP-DCS error"),
    (160, "command cannot be actioned"),
    (161, "command unsupported"),
    (175, "unspecified TP-Command error"),
    (176, "TPDU not supported"),
    (192, "SC busy"),
    (193, "no SC subscription"),
    (194, "SC system failure"),
    (195, "invalid SME address"),
    (196, "destination SME barred"),
    (197, "SM rejected-duplicate SM"),
    (198, "TP-VPF not supported"),
    (199, "TP-VP not supported"),
    (208, "(U)SIM SMS storage full"),
    (209, "no SMS storage capability in (U)SIM"),
    (210, "error in MS"),
    (211, "memory capacity exceeded"),
    (212, "(U)SIM Application Toolkit busy"),
    (213, "(U)SIM data download error"),
    (255, "unspecified error cause"),
    (300, "ME failure"),
    (301, "SMS service of ME reserved"),
    (302, "operation not allowed"),
    (303, "operation not supported"),
    (304, "invalid PDU mode parameter"),
    (305, "invalid text mode parameter"),
    (310, "(U)SIM not inserted"),
    (311, "(U)SIM PIN required"),
    (312, "PH-(U)SIM PIN required"),
    (313, "(U)SIM failure"),
    (314, "(U)SIM busy"),
    (315, "(U)SIM wrong"),
    (316, "(U)SIM PUK required"),
    (317, "(U)SIM PIN2 required"),
    (318, "(U)SIM PUK2 required"),
    (320, "memory failure"),
    (321, "invalid memory index"),
    (322, "memory full"),
    (330, "SMSC address unknown"),
    (331, "no network service"),
    (332, "network timeout"),
    (340, "no +CNMA acknowledgement expected"),
    (500, "unknown error"),
    (515, "please wait, init or command processing in progress"),
];

/// TS 27.007 §9.2 `<err>` values.
const CME: &[(u16, &str)] = &[
    (0, "phone failure"),
    (1, "no connection to phone"),
    (3, "operation not allowed"),
    (4, "operation not supported"),
    (5, "PH-SIM PIN required"),
    (10, "SIM not inserted"),
    (11, "SIM PIN required"),
    (12, "SIM PUK required"),
    (13, "SIM failure"),
    (14, "SIM busy"),
    (15, "SIM wrong"),
    (16, "incorrect password"),
    (17, "SIM PIN2 required"),
    (18, "SIM PUK2 required"),
    (20, "memory full"),
    (21, "invalid index"),
    (22, "not found"),
    (23, "memory failure"),
    (24, "text string too long"),
    (25, "invalid characters in text string"),
    (26, "dial string too long"),
    (27, "invalid characters in dial string"),
    (30, "no network service"),
    (31, "network timeout"),
    (32, "network not allowed - emergency calls only"),
    (100, "unknown"),
    (515, "please wait, init or command processing in progress"),
];

/// Errors of the driver other than a refused send.
#[derive(Debug, thiserror::Error)]
pub enum ModemError {
    /// The serial device could not be opened.
    #[error("cannot open {path}: {message}")]
    Open { path: String, message: String },
    /// Another program holds the device (its lock): the daemon, another smsgate command, a
    /// terminal program.
    #[error(
        "{path} is in use by another program (the smsgate daemon, another smsgate command, or a \
         terminal such as picocom); one program at a time can drive a modem"
    )]
    InUse { path: String },
    /// The AT engine failed (timeout, I/O, closed port, or the modem said no).
    #[error(transparent)]
    At(#[from] AtError),
    /// The SIM asks for a PIN and none is configured.
    #[error("the SIM asks for its PIN: set modem.pin in the configuration")]
    PinRequired,
    /// The configured PIN was refused.
    #[error("the SIM refused the configured PIN ({0}); check modem.pin before the SIM locks")]
    PinRejected(String),
    /// The SIM is PUK-locked: never guessed, a person must unlock it.
    #[error("the SIM is locked with its PUK: unlock it in a phone, then set the PIN in modem.pin")]
    PukLocked,
    /// No SIM, a broken SIM, or a state smsgate cannot handle.
    #[error("SIM problem: {0}")]
    Sim(String),
    /// The modem lacks something SMS needs (PDU mode, message notifications).
    #[error("the modem does not support {0}")]
    Unsupported(String),
    /// The modem is not initialised (starting, unplugged or recovering).
    #[error("the modem is not ready ({0})")]
    NotReady(String),
    /// A PDU read from the modem could not be decoded.
    #[error("undecodable PDU at {slot}: {message}")]
    Pdu { slot: String, message: String },
    /// The driver task has stopped.
    #[error("the modem task has stopped")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_cms_error() {
        let cases = [
            (38, SendErrorKind::Temporary, "network out of order"),
            (42, SendErrorKind::Temporary, "congestion"),
            (
                1,
                SendErrorKind::Permanent,
                "unassigned (unallocated) number",
            ),
            (10, SendErrorKind::Permanent, "call barred"),
            (
                50,
                SendErrorKind::Permanent,
                "requested facility not subscribed",
            ),
            (304, SendErrorKind::Permanent, "invalid PDU mode parameter"),
            (331, SendErrorKind::Temporary, "no network service"),
            (500, SendErrorKind::Temporary, "unknown error"),
            (532, SendErrorKind::Temporary, "manufacturer specific error"),
        ];
        for (code, kind, words) in cases {
            let error = SendError::from_result(&FinalResult::CmsError(ErrorCode::Numeric(code)));
            assert_eq!(error.kind, kind, "{code}");
            assert_eq!(error.code, Some(code));
            assert_eq!(error.message, format!("+CMS ERROR {code}: {words}"));
        }
    }

    #[test]
    fn verbose_errors_find_their_number() {
        let error = SendError::from_result(&FinalResult::CmsError(ErrorCode::Verbose(
            "Network out of order".into(),
        )));
        assert_eq!(error.code, Some(38));
        assert_eq!(error.kind, SendErrorKind::Temporary);
        let error = SendError::from_result(&FinalResult::CmsError(ErrorCode::Verbose(
            "Call barred".into(),
        )));
        assert_eq!(error.kind, SendErrorKind::Permanent);
        assert_eq!(error.message, "+CMS ERROR 10: Call barred");
    }

    #[test]
    fn busy_codes() {
        assert!(is_busy(&FinalResult::CmeError(ErrorCode::Numeric(515))));
        assert!(is_busy(&FinalResult::CmsError(ErrorCode::Numeric(314))));
        assert!(is_busy(&FinalResult::CmeError(ErrorCode::Verbose(
            "SIM busy".into()
        ))));
        assert!(!is_busy(&FinalResult::CmsError(ErrorCode::Numeric(38))));
        assert!(!is_busy(&FinalResult::Error));
    }

    #[test]
    fn timeouts_are_unknown() {
        let error = SendError::from_at(&AtError::Timeout {
            command: "AT+CMGS=23".into(),
            timeout: std::time::Duration::from_secs(180),
        });
        assert_eq!(error.kind, SendErrorKind::Unknown);
    }
}
