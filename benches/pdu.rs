//! PDU codec benchmarks: decode and encode of a full single-part message in each alphabet
//! (160 GSM 7-bit characters, 70 UCS-2 characters). The target is under 1 µs each; a part
//! is handled once per SMS, so this is headroom, not a bottleneck.

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use smsgate::pdu::{self, Address, SubmitOptions};

fn texts() -> (String, String) {
    let gsm7: String = "The quick brown fox jumps over the lazy dog; 0123456789 @£$ ÄÖÜ!"
        .chars()
        .cycle()
        .take(160)
        .collect();
    let ucs2: String = "Привет, мир! Съешь же ещё этих мягких французских булок. "
        .chars()
        .cycle()
        .take(70)
        .collect();
    (gsm7, ucs2)
}

fn codec(c: &mut Criterion) {
    let (gsm7, ucs2) = texts();
    let recipient = Address::parse("+60177872890").expect("valid number");
    let smsc = Address::parse("+60120000015").expect("valid number");
    let time = DateTime::parse_from_rfc3339("2026-11-25T19:00:00+08:00").expect("valid time");
    let options = SubmitOptions::default();

    for (name, text) in [("gsm7_160", &gsm7), ("ucs2_70", &ucs2)] {
        let deliver = pdu::encode_deliver(&smsc, &recipient, text, time, 0).expect("encodes");
        assert_eq!(deliver.len(), 1, "{name} is one part");
        let pdu = deliver[0].clone();
        c.bench_function(&format!("decode_deliver_{name}"), |b| {
            b.iter(|| pdu::decode(black_box(&pdu), true).expect("decodes"))
        });
        c.bench_function(&format!("encode_submit_{name}"), |b| {
            b.iter(|| {
                pdu::encode_submit(black_box(&recipient), black_box(text), &options)
                    .expect("encodes")
            })
        });
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
