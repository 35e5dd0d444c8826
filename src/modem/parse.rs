//! Information lines → values, with `at_commands`' parser, and commands built with its
//! `CommandBuilder`.
//!
//! Each function takes one line as the engine delivered it (no line end) and returns `None`
//! when the line does not have the expected shape; the caller decides whether that matters.
//! Nothing here performs I/O.
//!
//! PDUs in `+CMGR`/`+CMGL` answers and `+CMT`/`+CDS` URCs are framed tolerantly, as real
//! devices send them: junk after the hex on its line (a closing quote, spaces, the CR the
//! engine already dropped), `FF` padding up to the SIM record size, the PDU after a space on
//! the header's own line. What is not framing junk (a letter in the middle of the hex) is left
//! for the decoder to refuse.

use at_commands::builder::CommandBuilder;
use at_commands::parser::CommandParser;

use crate::at::classify;

/// `AT+NAME=<ints…>`, built with `at_commands` (no line end: the engine adds `\r`).
pub fn set_ints(name: &str, values: &[i32]) -> String {
    let mut buffer = [0u8; 96];
    let mut builder = CommandBuilder::create_set(&mut buffer, true).named(name);
    for &value in values {
        builder = builder.with_int_parameter(value);
    }
    built(builder.finish())
}

/// `AT+NAME="<text>"…` with string parameters, built with `at_commands`.
pub fn set_strings(name: &str, values: &[&str]) -> String {
    let mut buffer = [0u8; 96];
    let mut builder = CommandBuilder::create_set(&mut buffer, true).named(name);
    for value in values {
        builder = builder.with_string_parameter(value);
    }
    built(builder.finish())
}

fn built(result: Result<&[u8], usize>) -> String {
    match result {
        Ok(bytes) => String::from_utf8_lossy(bytes).trim_end().to_owned(),
        // The buffer holds any command this driver builds; a longer one is a programming error
        // that the modem will answer with ERROR.
        Err(needed) => format!("AT<command of {needed} bytes too long>"),
    }
}

/// TP-MR from `+CMGS: <mr>[,<scts>]` (TS 27.005 §3.5.1).
pub fn message_reference(line: &str) -> Option<u8> {
    let (mr,) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CMGS:")
        .expect_int_parameter()
        .expect_optional_raw_string()
        .finish()
        .ok()
        .map(|(mr, _)| (mr,))?;
    u8::try_from(mr).ok()
}

/// `+CSQ: <rssi>,<ber>` → dBm (TS 27.007 §8.5: 0 is −113 dBm or less, 31 is −51 or more,
/// 2 dB a step, 99 unknown).
pub fn signal_dbm(line: &str) -> Option<i32> {
    let (rssi, _) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CSQ:")
        .expect_int_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    match rssi {
        0..=31 => Some(-113 + 2 * rssi),
        _ => None,
    }
}

/// A word for a signal level, for people reading `smsgate doctor` and `/health`.
pub fn signal_word(dbm: i32) -> &'static str {
    match dbm {
        -73.. => "excellent",
        -83..=-74 => "good",
        -93..=-84 => "fair",
        -105..=-94 => "poor",
        _ => "very poor",
    }
}

/// Registration state from `+CREG: <n>,<stat>[,…]` (an answer to `AT+CREG?`), or the URC
/// form `+CREG: <stat>[,…]`; also `+CGREG`/`+CEREG`. (TS 27.007 §7.2.)
pub fn registration(line: &str, answer: bool) -> Option<u8> {
    let body = line.split_once(':')?.1.trim();
    let mut fields = body.split(',');
    if answer {
        fields.next()?;
    }
    fields.next()?.trim().parse().ok()
}

/// Whether a `<stat>` means registered (1 home, 5 roaming; 6/7 "SMS only", TS 27.007 §7.2).
pub fn is_registered(stat: u8) -> bool {
    matches!(stat, 1 | 5 | 6 | 7)
}

/// Words for a `<stat>` (TS 27.007 §7.2).
pub fn registration_word(stat: u8) -> &'static str {
    match stat {
        0 => "not registered, not searching",
        1 => "registered, home network",
        2 => "not registered, searching",
        3 => "registration denied",
        5 => "registered, roaming",
        6 => "registered for SMS only, home network",
        7 => "registered for SMS only, roaming",
        _ => "unknown",
    }
}

/// The operator name from `+COPS: <mode>[,<format>,<oper>[,<act>]]`.
pub fn operator(line: &str) -> Option<String> {
    let (_, _, name) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+COPS:")
        .expect_int_parameter()
        .expect_optional_int_parameter()
        .expect_optional_string_parameter()
        .finish()
        .ok()?;
    name.filter(|name| !name.is_empty()).map(str::to_owned)
}

/// `(memory, index)` from `+CMTI: "SM",3` or `+CDSI: "SR",5` (TS 27.005 §3.4.1).
pub fn stored_at(line: &str) -> Option<(String, u32)> {
    let body = line.split_once(':')?.1.trim();
    let (memory, index) = CommandParser::parse(body.as_bytes())
        .expect_string_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    Some((memory.to_owned(), u32::try_from(index).ok()?))
}

/// One PDU as a `+CMGR`/`+CMGL` answer (or a `+CMT`/`+CDS` URC) carried it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PduReply {
    /// `<index>` of a `+CMGL` entry.
    pub index: Option<u32>,
    /// `<stat>` (TS 27.005 §3.1): 0 received unread, 1 received read, 2 stored unsent,
    /// 3 stored sent.
    pub stat: Option<u8>,
    /// `<length>`: the TPDU's octets, the SMSC field not counted.
    pub length: Option<usize>,
    /// The PDU text as it came, junk included; empty when the PDU is missing.
    pub text: String,
}

impl PduReply {
    /// The PDU hex without framing junk (see [`pdu_hex`]).
    pub fn hex(&self) -> Framed<'_> {
        pdu_hex(&self.text, self.length)
    }

    /// Whether this is a message the modem received (`<stat>` 0 or 1, or not given, as for
    /// routed ones), not one stored for sending.
    pub fn is_received(&self) -> bool {
        !matches!(self.stat, Some(2 | 3))
    }
}

/// A PDU's hex with the framing junk taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    pub hex: &'a str,
    /// Characters dropped around it (quotes, spaces inside them, `FF` padding); whitespace
    /// around the whole text is not counted.
    pub dropped: usize,
}

/// The hex of a PDU line: quotes and spaces around it dropped, and anything after the digits
/// that holds no letter or digit (a quote, spaces). With the TPDU `length` of the header,
/// `F` digits beyond the PDU are dropped as SIM padding. A line with a letter or digit in its
/// tail (non-hex in the middle) is given back whole, for the decoder to refuse.
pub fn pdu_hex(text: &str, length: Option<usize>) -> Framed<'_> {
    let whole = text.trim();
    let body = whole.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let run = body.bytes().take_while(u8::is_ascii_hexdigit).count();
    let (mut hex, tail) = body.split_at(run);
    if run == 0 || tail.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return Framed {
            hex: whole,
            dropped: 0,
        };
    }
    let smsc = hex.get(..2).and_then(|h| usize::from_str_radix(h, 16).ok());
    if let (Some(length), Some(smsc)) = (length, smsc) {
        let total = 2 * (1 + smsc + length);
        if total < hex.len() && hex[total..].bytes().all(|b| b.eq_ignore_ascii_case(&b'F')) {
            hex = &hex[..total];
        }
    }
    Framed {
        hex,
        dropped: whole.len() - hex.len(),
    }
}

/// Splits a `+CMGR`/`+CMGL` header after its prefix into fields at commas outside quotes,
/// and takes a PDU carried on the same line off it.
fn header_fields<'a>(line: &'a str, prefix: &str) -> Option<(Vec<&'a str>, Option<&'a str>)> {
    let (header, inline) = match classify::inline_pdu(line) {
        Some((header, pdu)) => (header, Some(pdu)),
        None => (line, None),
    };
    let body = header.strip_prefix(prefix)?;
    let mut fields = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (at, c) in body.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                fields.push(body[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    fields.push(body[start..].trim());
    Some((fields, inline))
}

fn number<T: std::str::FromStr>(field: Option<&&str>) -> Option<T> {
    field?.trim_matches('"').parse().ok()
}

/// The PDU line after a header: the next line, if it starts like a PDU.
fn next_pdu<'a>(lines: &mut std::iter::Peekable<impl Iterator<Item = &'a String>>) -> String {
    lines
        .next_if(|line| classify::is_pdu_line(line))
        .cloned()
        .unwrap_or_default()
}

/// The answer to `AT+CMGR=<index>` (TS 27.005 §3.4.3): `+CMGR: <stat>,[<alpha>],<length>`
/// and the PDU. `None` when the slot is empty (no header, no PDU).
pub fn read_reply(lines: &[String]) -> Option<PduReply> {
    let mut rest = lines.iter().peekable();
    while let Some(line) = rest.next() {
        let Some((fields, inline)) = header_fields(line, "+CMGR:") else {
            continue;
        };
        let text = match inline {
            Some(pdu) => pdu.to_owned(),
            None => next_pdu(&mut rest),
        };
        return Some(PduReply {
            index: None,
            stat: number(fields.first()),
            length: if fields.len() >= 2 {
                number(fields.last())
            } else {
                None
            },
            text,
        });
    }
    // No header at all (some modems print only the PDU): the one line that is a PDU.
    let mut pdus = lines.iter().filter(|line| classify::is_pdu_line(line));
    match (pdus.next(), pdus.next()) {
        (Some(pdu), None) => Some(PduReply {
            text: pdu.clone(),
            ..PduReply::default()
        }),
        _ => None,
    }
}

/// The entries of an `AT+CMGL` answer (TS 27.005 §3.4.2): each
/// `+CMGL: <index>,<stat>,[<alpha>],<length>` header with its PDU. An entry whose PDU is
/// missing comes with an empty `text`; a header without an index is skipped.
pub fn list_reply(lines: &[String]) -> Vec<PduReply> {
    let mut entries = Vec::new();
    let mut rest = lines.iter().peekable();
    while let Some(line) = rest.next() {
        let Some((fields, inline)) = header_fields(line, "+CMGL:") else {
            continue;
        };
        let Some(index) = number(fields.first()) else {
            continue;
        };
        let text = match inline {
            Some(pdu) => pdu.to_owned(),
            None => next_pdu(&mut rest),
        };
        entries.push(PduReply {
            index: Some(index),
            stat: number(fields.get(1)),
            length: if fields.len() >= 3 {
                number(fields.last())
            } else {
                None
            },
            text,
        });
    }
    entries
}

/// The PDU of a routed `+CMT: [<alpha>],<length>` / `+CDS: <length>` URC (TS 27.005
/// §3.4.1): its data line, or the PDU on the header's own line.
pub fn routed(line: &str, data: Option<&str>) -> Option<PduReply> {
    let (header, inline) = match classify::inline_pdu(line) {
        Some((header, pdu)) => (header, Some(pdu)),
        None => (line, None),
    };
    let text = data.or(inline)?;
    let length = header
        .rsplit(',')
        .next()
        .and_then(|field| field.split_once(':').map_or(Some(field), |(_, f)| Some(f)))
        .and_then(|field| field.trim().parse().ok());
    Some(PduReply {
        index: None,
        stat: None,
        length,
        text: text.to_owned(),
    })
}

/// The index from a `+CMGL: <index>,<stat>,[<alpha>],<length>` header.
pub fn list_index(line: &str) -> Option<u32> {
    let (index,) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CMGL:")
        .expect_int_parameter()
        .finish()
        .ok()
        .or_else(|| {
            // `expect_int_parameter` wants the comma consumed; read the field by hand then.
            let body = line.strip_prefix("+CMGL:")?.trim();
            Some((body.split(',').next()?.trim().parse().ok()?,))
        })?;
    u32::try_from(index).ok()
}

/// `(used, total)` of the first memory in an answer to `AT+CPMS=…` (`+CPMS: 3,30,…`) or
/// `AT+CPMS?` (`+CPMS: "SM",3,30,…`).
pub fn storage(line: &str) -> Option<(u32, u32)> {
    let body = line.strip_prefix("+CPMS:")?.trim();
    let numbers: Vec<u32> = body
        .split(',')
        .filter_map(|field| field.trim().parse().ok())
        .collect();
    match numbers.as_slice() {
        [used, total, ..] => Some((*used, *total)),
        _ => None,
    }
}

/// The memories offered for reading in `+CPMS: ("SM","SR"),("SM"),("SM")`, the answer to
/// `AT+CPMS=?` (TS 27.005 §3.2.2): the first parenthesised list.
pub fn first_memories(line: &str) -> Option<Vec<String>> {
    let body = line.strip_prefix("+CPMS:")?.trim();
    let list = body.strip_prefix('(')?.split_once(')')?.0;
    Some(
        list.split(',')
            .map(|memory| memory.trim().trim_matches('"').to_ascii_uppercase())
            .filter(|memory| !memory.is_empty())
            .collect(),
    )
}

/// `<mode>,<mt>,<bm>,<ds>,<bfr>` from `+CNMI: 2,1,0,2,0`, the answer to `AT+CNMI?`
/// (TS 27.005 §3.4.1); missing trailing fields read as 0, as modems that print fewer mean.
pub fn cnmi(line: &str) -> Option<[i32; 5]> {
    let body = line.strip_prefix("+CNMI:")?.trim();
    let mut values = [0; 5];
    let mut count = 0;
    for (slot, field) in values.iter_mut().zip(body.split(',')) {
        *slot = field.trim().parse().ok()?;
        count += 1;
    }
    (count >= 2).then_some(values)
}

/// The SMSC number from `+CSCA: "<number>",<type>`.
pub fn smsc(line: &str) -> Option<String> {
    let (number,) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CSCA:")
        .expect_string_parameter()
        .finish()
        .ok()
        .or_else(|| {
            CommandParser::parse(line.as_bytes())
                .expect_identifier(b"+CSCA:")
                .expect_string_parameter()
                .expect_optional_int_parameter()
                .finish()
                .ok()
                .map(|(number, _)| (number,))
        })?;
    Some(number.to_owned()).filter(|number| !number.is_empty())
}

/// `<service>` from `+CSMS: <service>,<mt>,<mo>,<bm>` (or `+CSMS: <mt>,<mo>,<bm>` after a
/// set): 1 means phase 2+, where routed messages need `AT+CNMA` (TS 27.005 §3.2.1).
pub fn sms_service(line: &str) -> Option<u8> {
    let body = line.strip_prefix("+CSMS:")?.trim();
    let fields: Vec<&str> = body.split(',').map(str::trim).collect();
    match fields.as_slice() {
        [service, _, _, _] => service.parse().ok(),
        _ => None,
    }
}

/// The PIN state from `+CPIN: <code>` (TS 27.007 §8.3): `READY`, `SIM PIN`, `SIM PUK`, ….
pub fn pin_state(line: &str) -> Option<String> {
    let state = line.strip_prefix("+CPIN:")?.trim().trim_matches('"');
    (!state.is_empty()).then(|| state.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::classify::final_result;
    use crate::at::frame::{Frame, Framer};
    use crate::pdu::{self, Pdu};

    /// "How are you?" from 17738475488 through SMSC +27381000015: 30 TPDU octets.
    const PDU: &str =
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07";

    /// The information lines of a reply, byte for byte as a modem sends it, framed exactly
    /// as the AT engine frames it (whole, and split byte by byte): everything but the final
    /// result.
    fn lines(reply: &[u8]) -> Vec<String> {
        let mut whole = Vec::new();
        let mut split = Vec::new();
        Framer::new(2048).feed(reply, false, &mut whole);
        let mut framer = Framer::new(2048);
        for byte in reply {
            framer.feed(std::slice::from_ref(byte), false, &mut split);
        }
        assert_eq!(whole, split, "{reply:?}");
        whole
            .into_iter()
            .filter_map(|frame| match frame {
                Frame::Line(line) if final_result(&line).is_none() => Some(line),
                _ => None,
            })
            .collect()
    }

    fn text_of(reply: &PduReply) -> String {
        match pdu::decode_hex(reply.hex().hex, true) {
            Ok(Pdu::Deliver(d)) => d.user_data.text,
            other => panic!("{reply:?}: {other:?}"),
        }
    }

    #[test]
    fn cmgr_replies_as_devices_send_them() {
        let padding = "FF".repeat(175 - PDU.len() / 2);
        let cases: Vec<(String, &str)> = vec![
            (
                format!("\r\n+CMGR: 0,,30\r\n{PDU}\r\n\r\nOK\r\n"),
                "standard",
            ),
            // A closing quote and a stray CR after the PDU, as some phones send.
            (
                format!("\r\n+CMGR: 0,,30\r\n{PDU}\"\r\r\n\r\nOK\r\n"),
                "quote and CR",
            ),
            (
                format!("\r\n+CMGR: 1,,30\r\n{PDU}   \r\n\r\nOK\r\n"),
                "trailing spaces",
            ),
            (
                format!("\r\n+CMGR: 0,,30\r\n\"{PDU}\"\r\n\r\nOK\r\n"),
                "quoted",
            ),
            // A space instead of CR LF between header and PDU.
            (
                format!("\r\n+CMGR: 0,,30 {PDU}\r\n\r\nOK\r\n"),
                "space separator",
            ),
            (
                format!("\r\n+CMGR: 0,\"Ann Lee\",30 {PDU}\"\r\n\r\nOK\r\n"),
                "on the header line after a quoted alpha",
            ),
            // The whole SIM record, padded with FF.
            (
                format!("\r\n+CMGR: 0,,30\r\n{PDU}{padding}\r\n\r\nOK\r\n"),
                "FF padding",
            ),
        ];
        for (reply, what) in cases {
            let reply = read_reply(&lines(reply.as_bytes())).expect(what);
            assert_eq!(reply.hex().hex, PDU, "{what}");
            assert_eq!(text_of(&reply), "How are you?", "{what}");
            assert!(reply.is_received(), "{what}");
            assert_eq!(reply.length, Some(30), "{what}");
        }
    }

    #[test]
    fn what_is_not_framing_junk_is_left_for_the_decoder() {
        // A letter in the middle of the hex: the line is given whole, and the decoder refuses.
        let broken = format!("{}ZZ{}", &PDU[..30], &PDU[32..]);
        let reply = read_reply(&lines(
            format!("\r\n+CMGR: 0,,30\r\n{broken}\r\n\r\nOK\r\n").as_bytes(),
        ))
        .expect("a reply");
        assert_eq!(reply.hex().hex, broken);
        assert!(matches!(
            pdu::decode_hex(reply.hex().hex, true),
            Err(pdu::PduError::NotHex { position: 30, .. })
        ));
        // Junk after the digits that holds letters is not junk either.
        let with_ok = format!("{PDU}\"OK");
        let framed = pdu_hex(&with_ok, Some(30));
        assert_eq!((framed.hex, framed.dropped), (with_ok.as_str(), 0));
        // Padding is cut only with the length, and only when it is all F.
        assert_eq!(
            pdu_hex(&format!("{PDU}FFFF"), None).hex,
            format!("{PDU}FFFF")
        );
        assert_eq!(
            pdu_hex(&format!("{PDU}FF00"), Some(30)).hex,
            format!("{PDU}FF00")
        );
        let padded = format!("{PDU}FFFF\"");
        let framed = pdu_hex(&padded, Some(30));
        assert_eq!((framed.hex, framed.dropped), (PDU, 5));
        // Whitespace around the line is not counted as dropped.
        assert_eq!(pdu_hex(&format!("  {PDU}\n"), None).dropped, 0);
    }

    #[test]
    fn empty_slots_and_missing_pdus() {
        assert_eq!(read_reply(&lines(b"\r\nOK\r\n")), None);
        let reply = read_reply(&lines(b"\r\n+CMGR: 0,,30\r\n\r\nOK\r\n")).expect("header");
        assert_eq!((reply.stat, reply.text.as_str()), (Some(0), ""));
        // Only the PDU, no header (some modems): still read.
        let reply = read_reply(&lines(format!("\r\n{PDU}\r\nOK\r\n").as_bytes())).expect("pdu");
        assert_eq!((reply.stat, reply.hex().hex), (None, PDU));
        // A stored outgoing message is not a received one.
        let reply =
            read_reply(&lines(format!("+CMGR: 2,,30\r\n{PDU}\r\n").as_bytes())).expect("stored");
        assert!(!reply.is_received());
    }

    #[test]
    fn cmgl_listings_with_mixed_framing() {
        let reply = format!(
            "\r\n+CMGL: 1,0,,30\r\n{PDU}\r\n\
             +CMGL: 2,1,,30 {PDU}\"\r\r\n\
             +CMGL: 3,1,,30\r\n\
             +CMGL: 4,0,,30\r\n{PDU}FFFFFFFF\r\n\r\nOK\r\n"
        );
        let entries = list_reply(&lines(reply.as_bytes()));
        let indices: Vec<Option<u32>> = entries.iter().map(|e| e.index).collect();
        assert_eq!(indices, [Some(1), Some(2), Some(3), Some(4)]);
        for entry in [&entries[0], &entries[1], &entries[3]] {
            assert_eq!(entry.hex().hex, PDU, "{entry:?}");
        }
        // Entry 3 lost its PDU line: it comes with no text, for the caller to leave alone.
        assert_eq!(entries[2].text, "");
        assert_eq!(entries[1].stat, Some(1));
    }

    #[test]
    fn routed_pdus() {
        let reply = routed("+CMT: ,30", Some(&format!("{PDU}\""))).expect("routed");
        assert_eq!((reply.length, reply.hex().hex), (Some(30), PDU));
        let line = format!("+CMT: \"\",30 {PDU}");
        let reply = routed(&line, None).expect("inline");
        assert_eq!(reply.hex().hex, PDU);
        assert_eq!(routed("+CDS: 25", None), None);
        assert_eq!(
            routed("+CDS: 25", Some("0006")).and_then(|r| r.length),
            Some(25)
        );
    }

    #[test]
    fn built_commands() {
        assert_eq!(set_ints("+CMGS", &[153]), "AT+CMGS=153");
        assert_eq!(set_ints("+CNMI", &[2, 1, 0, 1, 0]), "AT+CNMI=2,1,0,1,0");
        assert_eq!(
            set_strings("+CPMS", &["SM", "SM", "SM"]),
            "AT+CPMS=\"SM\",\"SM\",\"SM\""
        );
        assert_eq!(set_strings("+CPIN", &["1234"]), "AT+CPIN=\"1234\"");
    }

    #[test]
    fn message_references() {
        assert_eq!(message_reference("+CMGS: 12"), Some(12));
        assert_eq!(message_reference("+CMGS:0"), Some(0));
        assert_eq!(message_reference("+CMGS: 255"), Some(255));
        assert_eq!(message_reference("+CMGS: 256"), None);
        assert_eq!(
            message_reference("+CMGS: 7,\"24/11/25,10:00:00+00\""),
            Some(7)
        );
        assert_eq!(message_reference("+CMSS: 7"), None);
    }

    #[test]
    fn signal() {
        assert_eq!(signal_dbm("+CSQ: 20,99"), Some(-73));
        assert_eq!(signal_dbm("+CSQ: 0,0"), Some(-113));
        assert_eq!(signal_dbm("+CSQ: 31,99"), Some(-51));
        assert_eq!(signal_dbm("+CSQ: 99,99"), None);
        assert_eq!(signal_word(-73), "excellent");
        assert_eq!(signal_word(-89), "fair");
        assert_eq!(signal_word(-111), "very poor");
    }

    #[test]
    fn registrations() {
        assert_eq!(registration("+CREG: 0,1", true), Some(1));
        assert_eq!(
            registration("+CREG: 2,5,\"1A2B\",\"01C3\",7", true),
            Some(5)
        );
        assert_eq!(registration("+CEREG: 2", false), Some(2));
        assert!(is_registered(5));
        assert!(!is_registered(3));
    }

    #[test]
    fn other_answers() {
        assert_eq!(
            operator("+COPS: 0,0,\"Vodafone UK\",7").as_deref(),
            Some("Vodafone UK")
        );
        assert_eq!(operator("+COPS: 0"), None);
        assert_eq!(stored_at("+CMTI: \"SM\",3"), Some(("SM".into(), 3)));
        assert_eq!(stored_at("+CDSI: \"SR\",12"), Some(("SR".into(), 12)));
        assert_eq!(list_index("+CMGL: 1,0,,24"), Some(1));
        assert_eq!(list_index("+CMGL: 17,1,\"\",25"), Some(17));
        assert_eq!(storage("+CPMS: 3,30,3,30,3,30"), Some((3, 30)));
        assert_eq!(
            storage("+CPMS: \"SM\",30,30,\"SM\",30,30,\"SM\",30,30"),
            Some((30, 30))
        );
        assert_eq!(
            smsc("+CSCA: \"+447785016005\",145").as_deref(),
            Some("+447785016005")
        );
        assert_eq!(smsc("+CSCA: \"\",129"), None);
        assert_eq!(sms_service("+CSMS: 1,1,1,1"), Some(1));
        assert_eq!(
            first_memories("+CPMS: (\"SM\",\"SR\"),(\"SM\"),(\"SM\")"),
            Some(vec!["SM".to_owned(), "SR".to_owned()])
        );
        assert_eq!(
            first_memories("+CPMS: (\"sm\",\"me\",\"mt\"),(\"sm\",\"me\"),(\"sm\")"),
            Some(vec!["SM".to_owned(), "ME".to_owned(), "MT".to_owned()])
        );
        assert_eq!(first_memories("+CPMS: \"SM\",3,30"), None);
        assert_eq!(cnmi("+CNMI: 2,1,0,2,0"), Some([2, 1, 0, 2, 0]));
        assert_eq!(cnmi("+CNMI: 2,0,0,0,0"), Some([2, 0, 0, 0, 0]));
        assert_eq!(cnmi("+CNMI: 1,1"), Some([1, 1, 0, 0, 0]));
        assert_eq!(cnmi("+CNMI: x,1"), None);
        assert_eq!(cnmi("+CMTI: \"SM\",1"), None);
        assert_eq!(sms_service("+CSMS: 1,1,1"), None);
        assert_eq!(pin_state("+CPIN: SIM PIN").as_deref(), Some("SIM PIN"));
        assert_eq!(pin_state("+CPIN: READY").as_deref(), Some("READY"));
    }
}
