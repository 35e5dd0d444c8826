//! Lines → meaning: final result codes, unsolicited result codes, and the prefix that marks a
//! line as the answer of the command in flight.
//!
//! The order of the checks is the one ModemManager's serial parsers and atat's digester use:
//! a line is first tested as a URC (unless it carries the prefix of the command in flight, as
//! `+CREG:` does for `AT+CREG?`), then as a final result, and only then taken as an
//! information line. This module is pure: it knows no I/O, no time and nothing of SMS beyond
//! which URCs are followed by a second (PDU) line.

use std::fmt;

/// How a command ended (ITU-T V.250 §5.7.1, TS 27.007 §9.2, TS 27.005 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    /// `OK`
    Ok,
    /// `ERROR` (or `+CMEE=0` behaviour: no detail).
    Error,
    /// `+CME ERROR: <err>` — a mobile equipment error (TS 27.007 §9.2).
    CmeError(ErrorCode),
    /// `+CMS ERROR: <err>` — a message service error (TS 27.005 §3.2.5).
    CmsError(ErrorCode),
    /// Another V.250 final result (`NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`,
    /// `COMMAND NOT SUPPORT`, …).
    Other(String),
}

impl FinalResult {
    /// `true` for `OK` only.
    pub fn is_ok(&self) -> bool {
        matches!(self, FinalResult::Ok)
    }
}

impl fmt::Display for FinalResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinalResult::Ok => f.write_str("OK"),
            FinalResult::Error => f.write_str("ERROR"),
            FinalResult::CmeError(code) => write!(f, "+CME ERROR: {code}"),
            FinalResult::CmsError(code) => write!(f, "+CMS ERROR: {code}"),
            FinalResult::Other(text) => f.write_str(text),
        }
    }
}

/// The `<err>` of `+CME ERROR` / `+CMS ERROR`: a number with `AT+CMEE=1`, words with
/// `AT+CMEE=2` (some modems answer verbosely whatever was asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Numeric(u16),
    Verbose(String),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Numeric(code) => write!(f, "{code}"),
            ErrorCode::Verbose(text) => f.write_str(text),
        }
    }
}

/// Parses a final result code, or `None` for any other line.
pub(crate) fn final_result(line: &str) -> Option<FinalResult> {
    match line {
        "OK" => return Some(FinalResult::Ok),
        "ERROR" => return Some(FinalResult::Error),
        "NO CARRIER"
        | "BUSY"
        | "NO ANSWER"
        | "NO DIALTONE"
        | "COMMAND NOT SUPPORT"
        | "TOO MANY PARAMETERS" => return Some(FinalResult::Other(line.to_owned())),
        _ => {}
    }
    if let Some(rest) = line.strip_prefix("+CME ERROR:") {
        return Some(FinalResult::CmeError(error_code(rest)));
    }
    if let Some(rest) = line.strip_prefix("+CMS ERROR:") {
        return Some(FinalResult::CmsError(error_code(rest)));
    }
    None
}

fn error_code(text: &str) -> ErrorCode {
    let text = text.trim();
    // at-commands' parser reads the number the same way it reads any `+X: <int>` answer.
    let parsed = at_commands::parser::CommandParser::parse(text.as_bytes())
        .expect_int_parameter()
        .finish();
    match parsed {
        Ok((code,)) if text.bytes().all(|b| b.is_ascii_digit()) => match u16::try_from(code) {
            Ok(code) => ErrorCode::Numeric(code),
            Err(_) => ErrorCode::Verbose(text.to_owned()),
        },
        _ => ErrorCode::Verbose(text.to_owned()),
    }
}

/// What kind of unsolicited line this is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrcShape {
    /// Complete in one line (`+CMTI: "SM",3`, `RING`, `^RSSI: 17`).
    OneLine,
    /// A header followed by one data line: `+CMT:`/`+CDS:`/`+CBM:` in PDU mode carry the PDU
    /// on the next line (TS 27.005 §3.4.1).
    TwoLine,
}

/// Prefixes of unsolicited result codes: standard ones (TS 27.005 §3.4.1, TS 27.007) and the
/// vendor noise seen on Huawei, Quectel, SIMCom, Sierra and u-blox modems.
const URCS: &[(&str, UrcShape)] = &[
    ("+CMTI:", UrcShape::OneLine),
    ("+CMT:", UrcShape::TwoLine),
    ("+CDSI:", UrcShape::OneLine),
    ("+CDS:", UrcShape::TwoLine),
    ("+CBM:", UrcShape::TwoLine),
    ("+CBMI:", UrcShape::OneLine),
    ("+CREG:", UrcShape::OneLine),
    ("+CGREG:", UrcShape::OneLine),
    ("+CEREG:", UrcShape::OneLine),
    ("+C5GREG:", UrcShape::OneLine),
    ("+CUSD:", UrcShape::OneLine),
    ("+CRING:", UrcShape::OneLine),
    ("+CLIP:", UrcShape::OneLine),
    ("+CCWA:", UrcShape::OneLine),
    ("+CIEV:", UrcShape::OneLine),
    ("+CGEV:", UrcShape::OneLine),
    ("+CTZV:", UrcShape::OneLine),
    ("+CTZE:", UrcShape::OneLine),
    ("+CPIN:", UrcShape::OneLine),
    ("+CFUN:", UrcShape::OneLine),
    ("+QIND:", UrcShape::OneLine),
    ("+QUSIM:", UrcShape::OneLine),
    ("+CSQN:", UrcShape::OneLine),
    ("+STIN:", UrcShape::OneLine),
    ("+PACSP", UrcShape::OneLine),
    ("^RSSI:", UrcShape::OneLine),
    ("^HCSQ:", UrcShape::OneLine),
    ("^BOOT:", UrcShape::OneLine),
    ("^MODE:", UrcShape::OneLine),
    ("^SRVST:", UrcShape::OneLine),
    ("^SIMST:", UrcShape::OneLine),
    ("^SYSSTART", UrcShape::OneLine),
    ("^DSFLOWRPT:", UrcShape::OneLine),
    ("^NDISSTAT:", UrcShape::OneLine),
    ("^STIN:", UrcShape::OneLine),
    ("*EMRDY:", UrcShape::OneLine),
    ("RING", UrcShape::OneLine),
    ("RDY", UrcShape::OneLine),
    ("SMS Ready", UrcShape::OneLine),
    ("Call Ready", UrcShape::OneLine),
    ("PB DONE", UrcShape::OneLine),
];

/// Whether `line` is an unsolicited result code, and its shape.
///
/// `expected` is the answer prefix of the command in flight (see [`response_prefix`]): a line
/// with that prefix answers the command even when the same prefix also exists as a URC.
pub(crate) fn urc(line: &str, expected: Option<&str>) -> Option<UrcShape> {
    if let Some(prefix) = expected {
        if has_prefix(line, prefix) {
            return None;
        }
    }
    URCS.iter()
        .find(|(prefix, _)| line.starts_with(prefix))
        .map(|&(_, shape)| shape)
}

fn has_prefix(line: &str, prefix: &str) -> bool {
    line.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// The prefix the answer lines of `command` start with: `AT+CREG?` → `+CREG`,
/// `AT+CMGL=4` → `+CMGL`, `AT^SYSINFO` → `^SYSINFO`; `None` for basic commands (`ATI`).
pub(crate) fn response_prefix(command: &str) -> Option<String> {
    let body = command
        .strip_prefix("AT")
        .or_else(|| command.strip_prefix("at"))?;
    let first = body.chars().next()?;
    if !matches!(first, '+' | '^' | '$' | '*' | '%' | '#') {
        return None;
    }
    let end = body[1..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(body.len(), |i| i + 1);
    (end > 1).then(|| body[..end].to_ascii_uppercase())
}

/// A line a hex PDU can be: non-empty, even length, hex digits only.
pub(crate) fn is_hex_line(line: &str) -> bool {
    !line.is_empty() && line.len() % 2 == 0 && line.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The fewest hex digits taken for a PDU: no header field is that long, and the shortest
/// SMS-DELIVER is 13 octets.
const MIN_PDU_DIGITS: usize = 14;

/// Hex digits at the start of `text`, after an optional opening quote.
fn hex_run(text: &str) -> usize {
    text.trim_start_matches('"')
        .bytes()
        .take_while(u8::is_ascii_hexdigit)
        .count()
}

/// A line that carries a PDU, possibly with junk after it: it starts (after an optional
/// quote) with a run of hex digits as long as a PDU. TS 27.005 §3.1 puts nothing else on the
/// line, but phones add a closing quote, spaces or `FF` padding; what follows the digits is
/// for the reader of the PDU to judge. A line of hex digits alone is one whatever its length.
pub(crate) fn is_pdu_line(line: &str) -> bool {
    is_hex_line(line) || hex_run(line) >= MIN_PDU_DIGITS
}

/// A header line (`+CMGR:`, `+CMGL:`, `+CMT:`, `+CDS:`) that carries its PDU itself, after a
/// space instead of the line end TS 27.005 §3.4.3 puts there (or as one more field after a
/// comma): the header and the PDU text. Quoted fields (`<alpha>`) are never taken for a PDU.
pub(crate) fn inline_pdu(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let mut quoted = false;
    for (at, c) in line.char_indices().skip(colon + 1) {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' | ',' if !quoted => {
                let rest = line[at + 1..].trim_start();
                if hex_run(rest) >= MIN_PDU_DIGITS {
                    return Some((line[..at].trim_end(), rest));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_results() {
        let cases = [
            ("OK", Some(FinalResult::Ok)),
            ("ERROR", Some(FinalResult::Error)),
            (
                "+CMS ERROR: 38",
                Some(FinalResult::CmsError(ErrorCode::Numeric(38))),
            ),
            (
                "+CME ERROR: 515",
                Some(FinalResult::CmeError(ErrorCode::Numeric(515))),
            ),
            (
                "+CMS ERROR: network out of order",
                Some(FinalResult::CmsError(ErrorCode::Verbose(
                    "network out of order".into(),
                ))),
            ),
            (
                "+CME ERROR: SIM PIN required",
                Some(FinalResult::CmeError(ErrorCode::Verbose(
                    "SIM PIN required".into(),
                ))),
            ),
            ("NO CARRIER", Some(FinalResult::Other("NO CARRIER".into()))),
            ("+CSQ: 20,99", None),
            ("OKAY", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(final_result(line), want, "{line:?}");
        }
    }

    #[test]
    fn urcs_unless_the_command_asked_for_them() {
        assert_eq!(urc("+CMTI: \"SM\",3", None), Some(UrcShape::OneLine));
        assert_eq!(urc("+CMT: ,24", None), Some(UrcShape::TwoLine));
        assert_eq!(urc("+CDS: 25", Some("+CMGS")), Some(UrcShape::TwoLine));
        assert_eq!(urc("^RSSI: 17", Some("+CSQ")), Some(UrcShape::OneLine));
        assert_eq!(urc("+CREG: 0,1", None), Some(UrcShape::OneLine));
        assert_eq!(urc("+CREG: 0,1", Some("+CREG")), None);
        assert_eq!(urc("+CPIN: READY", Some("+CPIN")), None);
        assert_eq!(urc("+CMGL: 1,0,,23", Some("+CMGL")), None);
        assert_eq!(urc("+CMGS: 12", Some("+CMGS")), None);
        assert_eq!(urc("+CSQ: 20,99", None), None);
        // `+CMT:` must not be mistaken for `+CMTI:` and vice versa.
        assert_eq!(urc("+CMTI: \"ME\",1", None), Some(UrcShape::OneLine));
    }

    #[test]
    fn response_prefixes() {
        for (command, want) in [
            ("AT+CREG?", Some("+CREG")),
            ("AT+CMGL=4", Some("+CMGL")),
            ("AT+CMGS=23", Some("+CMGS")),
            ("AT^SYSINFO", Some("^SYSINFO")),
            ("AT+CSQ", Some("+CSQ")),
            ("ATI", None),
            ("AT", None),
            ("ATE0", None),
        ] {
            assert_eq!(response_prefix(command).as_deref(), want, "{command}");
        }
    }

    #[test]
    fn pdu_lines_and_pdus_on_the_header_line() {
        let pdu = "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07";
        assert!(is_pdu_line(pdu));
        assert!(is_pdu_line(&format!("{pdu}\"")));
        assert!(is_pdu_line(&format!("\"{pdu}\"")));
        assert!(is_pdu_line(&format!("{pdu}FFFF  ")));
        for line in ["OK", "ERROR", "+CMGR: 0,,24", "BUSY", "BEEF\"", ""] {
            assert!(!is_pdu_line(line), "{line}");
        }
        let line = format!("+CMGR: 0,,24 {pdu}");
        assert_eq!(inline_pdu(&line), Some(("+CMGR: 0,,24", pdu)));
        let line = format!("+CMGL: 3,1,\"Ann Lee\",24  {pdu}\"");
        assert_eq!(
            inline_pdu(&line),
            Some(("+CMGL: 3,1,\"Ann Lee\",24", &*format!("{pdu}\"")))
        );
        let line = format!("+CMT: ,24,{pdu}");
        assert_eq!(inline_pdu(&line), Some(("+CMT: ,24", pdu)));
        // A quoted alpha that happens to be hex is a name, not a PDU.
        assert_eq!(inline_pdu("+CMGR: 1,\" 0123456789ABCDEF\",24"), None);
        assert_eq!(inline_pdu("+CMGR: 0,,24"), None);
        assert_eq!(inline_pdu(pdu), None);
    }

    #[test]
    fn hex_lines() {
        assert!(is_hex_line("0791447758100650040C914477"));
        assert!(!is_hex_line("OK"));
        assert!(!is_hex_line("ABC"));
        assert!(!is_hex_line(""));
    }
}
