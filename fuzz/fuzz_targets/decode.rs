//! Fuzz target: any bytes, with or without the SMSC field, and any text as hex, must decode to
//! a value or a `PduError`, never a panic or an out-of-bounds read. A decoded DELIVER must
//! also survive being shown the way `smsgate pdu decode` shows it, and what lenient decoding
//! worked around must be consistent: a time stamp left out is reported, user data cut short
//! ends with the visible marker. The salvage path (what the daemon keeps of a PDU that does
//! not decode) must never panic either.
//!
//! Run it from the repository root, for ten minutes:
//!
//! ```text
//! cargo +nightly fuzz run decode -- -max_total_time=600
//! ```
//!
//! On a stable toolchain (no nightly installed), let stable accept the nightly-only flags and
//! leave out AddressSanitizer, which needs nightly's standard library:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run decode --sanitizer none -- -max_total_time=600
//! ```
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
    match pdu::decode(bytes, smsc_prefix) {
        Ok(decoded) => {
            // Every field must be printable; the timestamps must format.
            let shown = format!("{decoded:?}");
            assert!(!shown.is_empty());
            for warning in decoded.warnings() {
                assert!(!warning.to_string().is_empty());
            }
            match &decoded {
                pdu::Pdu::Deliver(d) => {
                    if let Some(timestamp) = d.timestamp {
                        drop(timestamp.to_rfc3339());
                    }
                    let left_out = d
                        .warnings
                        .iter()
                        .any(|w| matches!(w, pdu::Warning::UnreadableTime { .. }));
                    assert_eq!(d.timestamp.is_none(), left_out);
                    if d.user_data.truncated {
                        assert!(d.user_data.text.ends_with(pdu::TRUNCATED_MARKER));
                    }
                    drop(pdu::printable_text(&d.user_data.data));
                }
                pdu::Pdu::StatusReport(r) => {
                    if let Some(discharge_time) = r.discharge_time {
                        drop(discharge_time.to_rfc3339());
                    }
                    assert_eq!(r.status_class(), pdu::StatusClass::of(r.status));
                }
                pdu::Pdu::Submit(_) => {}
            }
        }
        Err(_) => drop(pdu::salvage(bytes, smsc_prefix)),
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = pdu::decode_hex(text, smsc_prefix);
    }
});
