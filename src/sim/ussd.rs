//! The simulated network's USSD service and how the simulated modem shows its answers.
//!
//! The network answers each configured code (`*100#` → "Your balance is 12.50 USD") and says
//! "operation not supported" (`+CUSD: 4`) to the rest. The answer travels in the GSM 7-bit
//! default alphabet (dcs 15) when it fits, else in UCS-2 (dcs 72), and the modem prints it the
//! way real ones do ([`UssdEncoding`]): plain characters (TS 27.007 §7.15's conversion to the
//! `AT+CSCS` character set, as SIMCom and Quectel do; UCS-2 hex under `AT+CSCS="UCS2"`),
//! packed septets in hex whatever the character set (Huawei), or UCS-2 hex always.
//!
//! Timing (the network's delay) is the device's; the interpreter asks for it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::pdu::{gsm7, ussd};

/// The dcs of an answer in the GSM 7-bit default alphabet, language unspecified.
pub(crate) const DCS_GSM7: u8 = 15;
/// The dcs of a UCS-2 answer (coding group 01, alphabet UCS-2).
pub(crate) const DCS_UCS2: u8 = 72;

/// How the modem prints the text of a `+CUSD` answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UssdEncoding {
    /// Characters in the TE character set: plain text under `AT+CSCS="GSM"` or `"IRA"`, UCS-2
    /// hex under `"UCS2"`; a UCS-2 answer (dcs 72) as UCS-2 hex.
    #[default]
    Text,
    /// GSM 7-bit answers as packed septets in hex, whatever `AT+CSCS` says (Huawei).
    Gsm7Hex,
    /// Every answer as UCS-2 hex with dcs 72.
    Ucs2Hex,
}

impl UssdEncoding {
    pub const ALL: [UssdEncoding; 3] = [Self::Text, Self::Gsm7Hex, Self::Ucs2Hex];

    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Gsm7Hex => "gsm7-hex",
            Self::Ucs2Hex => "ucs2-hex",
        }
    }
}

impl fmt::Display for UssdEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for UssdEncoding {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|encoding| encoding.name() == text)
            .ok_or_else(|| format!("unknown USSD encoding `{text}` (text, gsm7-hex or ucs2-hex)"))
    }
}

/// One answer as it goes over the serial line: `+CUSD: 0,"<text>",<dcs>`.
pub(crate) fn present(answer: &str, encoding: UssdEncoding, cscs: &str) -> (String, u8) {
    let gsm = gsm7::is_gsm7(answer) && encoding != UssdEncoding::Ucs2Hex;
    if !gsm {
        return (ussd::ucs2_hex(answer), DCS_UCS2);
    }
    match encoding {
        UssdEncoding::Gsm7Hex => (
            ussd::packed_hex(answer).unwrap_or_else(|| ussd::ucs2_hex(answer)),
            DCS_GSM7,
        ),
        _ if cscs.eq_ignore_ascii_case("UCS2") => (ussd::ucs2_hex(answer), DCS_GSM7),
        // A quote cannot appear inside the string; real networks do not send one either.
        _ => (answer.replace('"', "'"), DCS_GSM7),
    }
}

/// The code of a request, given as text (`*100#`) or, as Huawei modems want it, packed
/// septets in hex (`AA180C3602`). `None` when it is neither a USSD string nor hex of one.
pub(crate) fn request_code(given: &str) -> Option<String> {
    let is_code = |text: &str| {
        !text.is_empty()
            && text.len() <= crate::at::ussd::MAX_CODE_CHARS
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
    };
    if is_code(given) && (given.contains(['*', '#', '+']) || !looks_packed(given)) {
        return Some(given.to_owned());
    }
    let decoded = ussd::decode(given, Some(DCS_GSM7));
    (decoded.form == ussd::Form::PackedHex && is_code(&decoded.text)).then_some(decoded.text)
}

/// A string of digits only is a code (`AT+CUSD=1,"100"`) unless it reads as packed hex.
fn looks_packed(text: &str) -> bool {
    ussd::decode(text, Some(DCS_GSM7)).form == ussd::Form::PackedHex
}

/// The network's USSD answers, by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers(BTreeMap<String, String>);

impl Answers {
    /// The answer for `code`, if the network knows it.
    pub fn get(&self, code: &str) -> Option<&str> {
        self.0.get(code).map(String::as_str)
    }

    /// Sets (`Some`) or removes (`None`) the answer for `code`.
    pub fn set(&mut self, code: &str, answer: Option<String>) {
        match answer {
            Some(answer) => self.0.insert(code.to_owned(), answer),
            None => self.0.remove(code),
        };
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(code, text)| (code.as_str(), text.as_str()))
    }
}

impl FromIterator<(String, String)> for Answers {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Parses `CODE=TEXT` (the `--ussd` option): `*100#=Your balance is 12.50 USD`.
pub(crate) fn parse_answer(text: &str) -> Result<(String, String), String> {
    let (code, answer) = text.split_once('=').ok_or_else(|| {
        format!("expected CODE=TEXT, such as '*100#=Your balance is 12.50 USD', not {text:?}")
    })?;
    let code = code.trim();
    if request_code(code).as_deref() != Some(code) {
        return Err(format!("{code:?} is not a USSD code such as *100#"));
    }
    Ok((code.to_owned(), answer.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_printed_as_each_kind_of_modem_prints_them() {
        let balance = "Your balance is 12.50 USD";
        assert_eq!(
            present(balance, UssdEncoding::Text, "GSM"),
            (balance.to_owned(), 15)
        );
        assert_eq!(
            present(balance, UssdEncoding::Text, "UCS2"),
            (ussd::ucs2_hex(balance), 15)
        );
        let (hex, dcs) = present(balance, UssdEncoding::Gsm7Hex, "GSM");
        assert_eq!(
            (ussd::decode(&hex, Some(dcs)).text.as_str(), dcs),
            (balance, 15)
        );
        assert_eq!(
            present(balance, UssdEncoding::Ucs2Hex, "GSM"),
            (ussd::ucs2_hex(balance), 72)
        );
        // Text that GSM 7-bit cannot carry goes as UCS-2 whatever the modem.
        for encoding in UssdEncoding::ALL {
            assert_eq!(
                present("余额 5", encoding, "GSM"),
                (ussd::ucs2_hex("余额 5"), 72)
            );
        }
        for encoding in UssdEncoding::ALL {
            let (text, dcs) = present(balance, encoding, "GSM");
            assert_eq!(ussd::decode(&text, Some(dcs)).text, balance, "{encoding}");
        }
    }

    #[test]
    fn request_codes_as_text_or_packed_hex() {
        assert_eq!(request_code("*100#").as_deref(), Some("*100#"));
        assert_eq!(request_code("AA180C3602").as_deref(), Some("*100#"));
        assert_eq!(request_code("100").as_deref(), Some("100"));
        assert_eq!(request_code("balance"), None);
        assert_eq!(request_code(""), None);
        assert_eq!(
            parse_answer("*100#=Your balance is 12.50 USD"),
            Ok(("*100#".into(), "Your balance is 12.50 USD".into()))
        );
        assert!(parse_answer("*100#").is_err());
        assert!(parse_answer("bal=5").is_err());
        for encoding in UssdEncoding::ALL {
            assert_eq!(encoding.name().parse::<UssdEncoding>(), Ok(encoding));
        }
    }
}
