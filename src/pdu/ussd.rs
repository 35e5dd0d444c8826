//! The text of a USSD answer (`+CUSD: <m>,<str>,<dcs>`, TS 27.007 §7.15), decoded by its data
//! coding scheme: the cell-broadcast coding groups of 3GPP TS 23.038 §5, which USSD uses
//! (TS 23.038 §5 note; TS 24.080). And the two encodings a request or a simulated answer needs.
//!
//! Modems do not agree on how they show `<str>`. TS 27.007 says a GSM 7-bit answer is converted
//! to the TE character set (`AT+CSCS`), so with `"GSM"` most (SIMCom, Quectel, u-blox) print
//! plain characters; Huawei prints the septets still packed, as hex (`"C8329BFD06"`); with
//! `"UCS2"`, or for a UCS-2 answer (dcs 72), the text comes as UCS-2 hex (`"00480069"`).
//! [`decode`] tells these apart from the text itself and the dcs, and says which it found.
//!
//! Pure code: no I/O, no AT syntax (the `+CUSD` line is parsed by `crate::at::ussd`).

use super::gsm7::{self, Tables};
use super::septet;

/// The alphabet a USSD dcs names (TS 23.038 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// The GSM 7-bit default alphabet; reserved groups and alphabets are read as this too, as
    /// TS 23.038 §5 asks of a receiver.
    Gsm7,
    /// UCS-2 (read as UTF-16 big-endian).
    Ucs2,
    /// 8-bit data.
    EightBit,
}

/// What a USSD dcs says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    pub alphabet: Alphabet,
    /// Coding groups 0001 0000 and 0001 0001: the text starts with a two-letter ISO 639
    /// language code (then CR for 7-bit; packed into two octets for UCS-2).
    pub language_prefix: bool,
}

/// Reads a cell-broadcast/USSD data coding scheme (TS 23.038 §5).
pub fn coding(dcs: u8) -> Coding {
    let plain = |alphabet| Coding {
        alphabet,
        language_prefix: false,
    };
    let by_bits = |bits: u8| match bits & 0b11 {
        0b01 => Alphabet::EightBit,
        0b10 => Alphabet::Ucs2,
        _ => Alphabet::Gsm7,
    };
    match dcs >> 4 {
        // 0000: languages in the GSM 7-bit default alphabet (1111 = unspecified: dcs 15).
        0x0 | 0x2 | 0x3 => plain(Alphabet::Gsm7),
        0x1 => match dcs & 0x0F {
            0x0 => Coding {
                alphabet: Alphabet::Gsm7,
                language_prefix: true,
            },
            0x1 => Coding {
                alphabet: Alphabet::Ucs2,
                language_prefix: true,
            },
            _ => plain(Alphabet::Gsm7),
        },
        // 01xx: general data coding; bits 3..2 the alphabet (dcs 72 = 0x48 is UCS-2).
        0x4..=0x7 => plain(by_bits(dcs >> 2)),
        // 1001: message with a user data header; the same alphabet bits.
        0x9 => plain(by_bits(dcs >> 2)),
        // 1111: bit 2 chooses 8-bit data over the default alphabet.
        0xF if dcs & 0x04 != 0 => plain(Alphabet::EightBit),
        _ => plain(Alphabet::Gsm7),
    }
}

/// How the modem presented the text, as [`decode`] recognised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Plain characters (TS 27.007's conversion to `AT+CSCS="GSM"` or `"IRA"`).
    Text,
    /// GSM 7-bit septets still packed, in hex (Huawei).
    PackedHex,
    /// UCS-2 in hex (a UCS-2 answer, or `AT+CSCS="UCS2"`).
    Ucs2Hex,
    /// 8-bit data in hex (TS 27.007 §7.15: "two IRA characters per octet").
    OctetHex,
}

/// A decoded USSD answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub form: Form,
    /// The ISO 639 language code of coding groups 0001 0000/0001, when the text carried one.
    pub language: Option<String>,
}

/// Decodes the `<str>` of a `+CUSD` answer given its `<dcs>` (`None`: the modem gave none,
/// read as the default alphabet).
///
/// Hex is taken for hex only when it decodes to clean text: an answer such as `"1234"` is
/// plain digits, not two packed octets. 8-bit data that is not UTF-8 text stays hex.
pub fn decode(text: &str, dcs: Option<u8>) -> Decoded {
    let coding = coding(dcs.unwrap_or(0x0F));
    let octets = hex_octets(text);
    let (mut text, form) = match (coding.alphabet, &octets) {
        (Alphabet::Ucs2, Some(octets)) => match ucs2(octets, coding.language_prefix) {
            Some(decoded) => (decoded, Form::Ucs2Hex),
            None => (text.to_owned(), Form::Text),
        },
        (Alphabet::EightBit, Some(octets)) => match std::str::from_utf8(octets) {
            Ok(decoded) if clean(decoded) => (decoded.to_owned(), Form::OctetHex),
            _ => (text.to_owned(), Form::OctetHex),
        },
        (Alphabet::Gsm7, Some(octets)) => gsm7_hex(text, octets),
        _ => (text.to_owned(), Form::Text),
    };
    let mut language = None;
    if coding.language_prefix && coding.alphabet == Alphabet::Gsm7 {
        // "xx" then CR (TS 23.038 §5, coding group 0001 0000).
        let prefix: Vec<char> = text.chars().take(3).collect();
        if prefix.len() == 3 && prefix[..2].iter().all(char::is_ascii_alphabetic) {
            language = Some(prefix[..2].iter().collect());
            let skip = if prefix[2] == '\r' { 3 } else { 2 };
            text = text.chars().skip(skip).collect();
        }
    } else if coding.language_prefix && form == Form::Ucs2Hex {
        language = octets
            .as_deref()
            .filter(|octets| octets.len() >= 2)
            .map(|octets| {
                let mut septets = Vec::new();
                septet::unpack_into(&octets[..2], 0, 2, &mut septets);
                let mut code = String::new();
                Tables::DEFAULT.decode_into(septets, &mut code);
                code
            });
    }
    Decoded {
        text,
        form,
        language,
    }
}

/// A GSM 7-bit answer that looks like hex: UCS-2 hex (`AT+CSCS="UCS2"`), packed septets
/// (Huawei), or plain characters that happen to be hex digits, in that order of evidence.
fn gsm7_hex(text: &str, octets: &[u8]) -> (String, Form) {
    // UCS-2 of Latin text has a zero high octet in every unit: strong evidence.
    if octets.len() % 2 == 0 && octets.chunks(2).all(|unit| unit[0] == 0) {
        if let Some(decoded) = ucs2(octets, false) {
            return (decoded, Form::Ucs2Hex);
        }
    }
    if let Some(decoded) = unpack(octets).filter(|decoded| plausible_gsm7(decoded)) {
        return (decoded, Form::PackedHex);
    }
    (text.to_owned(), Form::Text)
}

/// Packed septets → text, with the USSD padding rule of TS 23.038 §6.1.2.3.1: when the
/// septets end on an octet boundary, a final CR is padding (7 spare bits filled with CR so
/// they are not read as `@`); a final `@` there is zero padding from senders that skip the rule.
fn unpack(octets: &[u8]) -> Option<String> {
    let count = octets.len() * 8 / 7;
    let mut septets = Vec::with_capacity(count);
    septet::unpack_into(octets, 0, count, &mut septets);
    if (octets.len() * 8) % 7 == 0 && matches!(septets.last(), Some(0x0D | 0x00)) {
        septets.pop();
    }
    let mut text = String::new();
    Tables::DEFAULT.decode_into(septets, &mut text);
    Some(text)
}

/// UTF-16 big-endian; `skip_language` drops the two octets of a packed language code first.
fn ucs2(octets: &[u8], skip_language: bool) -> Option<String> {
    let octets = if skip_language && octets.len() >= 2 {
        &octets[2..]
    } else {
        octets
    };
    if octets.len() % 2 != 0 {
        return None;
    }
    let units = octets
        .chunks(2)
        .map(|unit| u16::from_be_bytes([unit[0], unit[1]]));
    let text = char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()?;
    clean(&text).then_some(text)
}

/// The octets of `text` when it is an even number of hex digits (and not empty).
fn hex_octets(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    super::hex_to_bytes(text).ok()
}

/// No control characters but line ends and tabs.
fn clean(text: &str) -> bool {
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Packed hex misread as septets gives Greek capitals, `Æ`-like letters and stray escapes;
/// an operator's answer is text, digits and punctuation, mostly ASCII. Below three octets
/// (three characters) the evidence is too thin: `"CAFE"` stays `"CAFE"`.
fn plausible_gsm7(text: &str) -> bool {
    let chars = text.chars().count();
    let ascii = text.chars().filter(char::is_ascii).count();
    chars >= 3
        && ascii * 5 >= chars * 4
        && clean(text)
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() || matches!(c, ' ' | '\n' | '\r') || c.is_alphabetic())
        && !text
            .chars()
            .any(|c| ('Α'..='Ω').contains(&c) || matches!(c, 'Æ' | 'æ' | 'Ø' | 'ø' | 'Å' | 'å'))
}

/// `text` as packed GSM 7-bit septets in upper-case hex, as Huawei modems want a USSD request
/// and show an answer; `None` when a character has no GSM 7-bit form. Padding follows
/// TS 23.038 §6.1.2.3.1 (CR in 7 spare bits).
pub fn packed_hex(text: &str) -> Option<String> {
    let mut septets = Vec::new();
    for c in text.chars() {
        if !gsm7::encode_char(c, &mut septets) {
            return None;
        }
    }
    if septets.len() % 8 == 7 {
        septets.push(0x0D);
    }
    let mut octets = Vec::new();
    septet::pack(&[], &septets, &mut octets);
    Some(super::user_data::hex_upper(&octets))
}

/// `text` as UCS-2 (UTF-16 big-endian) in upper-case hex.
pub fn ucs2_hex(text: &str) -> String {
    let octets: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    super::user_data::hex_upper(&octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_groups_of_ts_23_038_section_5() {
        let gsm7 = Coding {
            alphabet: Alphabet::Gsm7,
            language_prefix: false,
        };
        assert_eq!(
            coding(0x0F),
            gsm7,
            "dcs 15: default alphabet, language unspecified"
        );
        assert_eq!(coding(0x00), gsm7, "German");
        assert_eq!(coding(0x20), gsm7, "Czech");
        assert_eq!(coding(0x48).alphabet, Alphabet::Ucs2, "dcs 72");
        assert_eq!(coding(0x44).alphabet, Alphabet::EightBit);
        assert_eq!(coding(0x40).alphabet, Alphabet::Gsm7);
        assert_eq!(
            coding(0x4C).alphabet,
            Alphabet::Gsm7,
            "reserved alphabet → default"
        );
        assert_eq!(coding(0x98).alphabet, Alphabet::Ucs2, "1001: with a header");
        assert_eq!(coding(0xF4).alphabet, Alphabet::EightBit);
        assert_eq!(coding(0xF0).alphabet, Alphabet::Gsm7);
        assert_eq!(
            coding(0x85).alphabet,
            Alphabet::Gsm7,
            "reserved group → default"
        );
        assert!(coding(0x10).language_prefix && coding(0x10).alphabet == Alphabet::Gsm7);
        assert!(coding(0x11).language_prefix && coding(0x11).alphabet == Alphabet::Ucs2);
    }

    #[test]
    fn plain_text_stays_as_it_is() {
        for text in [
            "Your balance is 12.50 USD",
            "1234",
            "CAFE",
            "Bal:RM5.00",
            "*100#",
        ] {
            let decoded = decode(text, Some(15));
            assert_eq!(decoded.text, text);
            assert_eq!(decoded.form, Form::Text, "{text}");
        }
    }

    #[test]
    fn packed_septets_in_hex_as_huawei_shows_them() {
        // "*100#" packed: the request string of many Huawei USSD captures.
        let decoded = decode("AA180C3602", Some(15));
        assert_eq!(decoded.text, "*100#");
        assert_eq!(decoded.form, Form::PackedHex);
        // TS 23.038 §6.1.2.1.1 packing, the textbook "hellohello".
        assert_eq!(decode("E8329BFD4697D9EC37", Some(15)).text, "hellohello");
        assert_eq!(decode("e8329bfd4697d9ec37", None).text, "hellohello");
    }

    #[test]
    fn seven_spare_bits_are_cr_padding_not_an_at_sign() {
        // 7 characters leave 7 spare bits in the 7th octet: TS 23.038 §6.1.2.3.1 fills them
        // with CR, which the receiver drops.
        let hex = packed_hex("Balance").expect("GSM");
        assert_eq!(hex.len(), 14, "7 octets");
        assert_eq!(decode(&hex, Some(15)).text, "Balance");
        // A sender that pads with zeros: the final `@` in that position is padding too.
        let mut septets = Vec::new();
        for c in "Balance".chars() {
            gsm7::encode_char(c, &mut septets);
        }
        septets.push(0);
        let mut octets = Vec::new();
        septet::pack(&[], &septets, &mut octets);
        let zero_padded = crate::pdu::user_data::hex_upper(&octets);
        assert_eq!(decode(&zero_padded, Some(15)).text, "Balance");
        // An 8-character text ends on the boundary without padding and keeps its last letter.
        assert_eq!(
            decode(&packed_hex("Balances").expect("GSM"), Some(15)).text,
            "Balances"
        );
    }

    #[test]
    fn ucs2_hex_for_dcs_72_and_for_cscs_ucs2() {
        let hex = ucs2_hex("Baki: RM 5.00 — terima kasih");
        let decoded = decode(&hex, Some(72));
        assert_eq!(decoded.text, "Baki: RM 5.00 — terima kasih");
        assert_eq!(decoded.form, Form::Ucs2Hex);
        // With AT+CSCS="UCS2" a GSM 7-bit answer comes as UCS-2 hex too.
        let decoded = decode(&ucs2_hex("Your balance is 12.50"), Some(15));
        assert_eq!(decoded.text, "Your balance is 12.50");
        assert_eq!(decoded.form, Form::Ucs2Hex);
        // Non-Latin text and emoji (a surrogate pair).
        assert_eq!(
            decode(&ucs2_hex("余额 ¥12 🙂"), Some(72)).text,
            "余额 ¥12 🙂"
        );
        // A modem that already converted UCS-2 to characters.
        assert_eq!(decode("Saldo 3,20 €", Some(72)).text, "Saldo 3,20 €");
    }

    #[test]
    fn language_prefixed_groups() {
        let decoded = decode("en\rYour balance is 1.00", Some(0x10));
        assert_eq!(decoded.text, "Your balance is 1.00");
        assert_eq!(decoded.language.as_deref(), Some("en"));
        // 0001 0001: two packed language characters in two octets, then UCS-2.
        let mut language = Vec::new();
        septet::pack(&[], b"de", &mut language);
        let hex = format!(
            "{}{}",
            crate::pdu::user_data::hex_upper(&language),
            ucs2_hex("Guthaben: 4,20 EUR")
        );
        let decoded = decode(&hex, Some(0x11));
        assert_eq!(decoded.text, "Guthaben: 4,20 EUR");
        assert_eq!(decoded.language.as_deref(), Some("de"));
    }

    #[test]
    fn eight_bit_data_is_text_when_it_is_utf8_and_hex_otherwise() {
        let decoded = decode("48656C6C6F", Some(0x44));
        assert_eq!(
            (decoded.text.as_str(), decoded.form),
            ("Hello", Form::OctetHex)
        );
        assert_eq!(decode("00FF01", Some(0x44)).text, "00FF01");
    }

    #[test]
    fn round_trips_and_unencodable_text() {
        for text in [
            "*100#",
            "*123*1#",
            "Saldo: 12.50 EUR; valid to 31/12",
            "abc",
        ] {
            let hex = packed_hex(text).expect("GSM text");
            assert_eq!(decode(&hex, Some(15)).text, text, "{hex}");
        }
        // One or two characters are too short to tell from plain hex digits: kept as text.
        assert_eq!(decode(&packed_hex("a").expect("GSM"), Some(15)).text, "61");
        assert_eq!(packed_hex("余额"), None);
        assert_eq!(ucs2_hex("Hi"), "00480069");
    }

    #[test]
    fn garbage_never_panics() {
        for text in ["", "\"", "ZZ", "0", "D800", "00", "FFFFFFFF", "1B1B1B"] {
            for dcs in [
                None,
                Some(0),
                Some(15),
                Some(0x11),
                Some(72),
                Some(0x44),
                Some(0xFF),
            ] {
                let _ = decode(text, dcs);
            }
        }
        // An unpaired surrogate is not UCS-2 text: kept as it came.
        assert_eq!(decode("D800", Some(72)).text, "D800");
    }
}
