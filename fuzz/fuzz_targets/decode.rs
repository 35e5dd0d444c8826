//! Fuzz target: any bytes, with or without the SMSC field, and any text as hex, must decode to
//! a value or a `PduError`, never a panic or an out-of-bounds read. A decoded DELIVER must
//! also survive being shown the way `smsgate pdu decode` shows it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/pdu/mod.rs"]
#[allow(dead_code, unused_imports)]
mod pdu;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let smsc_prefix = flags & 1 != 0;
    if let Ok(decoded) = pdu::decode(bytes, smsc_prefix) {
        // Every field must be printable; the timestamps must format.
        let shown = format!("{decoded:?}");
        assert!(!shown.is_empty());
        match decoded {
            pdu::Pdu::Deliver(d) => drop(d.timestamp.to_rfc3339()),
            pdu::Pdu::StatusReport(r) => {
                drop(r.discharge_time.to_rfc3339());
                assert_eq!(r.status_class(), pdu::StatusClass::of(r.status));
            }
            pdu::Pdu::Submit(_) => {}
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = pdu::decode_hex(text, smsc_prefix);
    }
});
