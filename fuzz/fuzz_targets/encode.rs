//! Fuzz target: any text must encode (or be refused with `TooManyParts`), take exactly the
//! parts `plan` counts, and decode back to the text `plan` says would be sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/pdu/mod.rs"]
#[allow(dead_code, unused_imports)]
mod pdu;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let recipient = pdu::Address::parse("+60177872890").expect("valid number");
    let options = pdu::SubmitOptions {
        force_ucs2: flags & 1 != 0,
        smart_encoding: flags & 2 != 0,
        status_report: flags & 4 != 0,
        concat_reference: u16::from(flags),
        ..pdu::SubmitOptions::default()
    };
    let plan = pdu::plan(text, options.smart_encoding, options.force_ucs2);
    let parts = match pdu::encode_submit(&recipient, text, &options) {
        Ok(parts) => parts,
        Err(pdu::PduError::TooManyParts { parts, .. }) => {
            assert_eq!(parts, plan.parts);
            return;
        }
        Err(error) => panic!("encoding failed: {error}"),
    };
    assert_eq!(parts.len(), plan.parts);
    let mut joined = String::new();
    for part in &parts {
        assert_eq!(part.tpdu_length + 1, part.bytes.len());
        match pdu::decode(&part.bytes, true) {
            Ok(pdu::Pdu::Submit(submit)) => joined.push_str(&submit.user_data.text),
            other => panic!("part does not decode as SUBMIT: {other:?}"),
        }
    }
    assert_eq!(joined, plan.text);
});
