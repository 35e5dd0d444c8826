//! Information lines → values, with `at_commands`' parser, and commands built with its
//! `CommandBuilder`.
//!
//! Each function takes one line as the engine delivered it (no line end) and returns `None`
//! when the line does not have the expected shape; the caller decides whether that matters.
//! Nothing here performs I/O.

use at_commands::builder::CommandBuilder;
use at_commands::parser::CommandParser;

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
