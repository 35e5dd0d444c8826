//! Whole-PDU vectors (each checked by hand, field by field, in the comments), round trips,
//! the malformed-input corpus, and property tests.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;

use super::*;

fn deliver(hex: &str, smsc_prefix: bool) -> Deliver {
    match decode_hex(hex, smsc_prefix).expect("vector decodes") {
        Pdu::Deliver(deliver) => deliver,
        other => panic!("not a DELIVER: {other:?}"),
    }
}

fn submit(hex: &str) -> Submit {
    match decode_hex(hex, true).expect("vector decodes") {
        Pdu::Submit(submit) => submit,
        other => panic!("not a SUBMIT: {other:?}"),
    }
}

fn at(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).expect("test time")
}

#[test]
fn deliver_gsm7_with_smsc() {
    // 07 91 7283010010F5        SMSC +27381000015
    // 04                        DELIVER, TP-MMS (no more messages)
    // 0B C8 7137485784F8        TP-OA: 11 digits, TON 4 (subscriber), NPI 8: 17738475488
    // 00 00                     TP-PID, TP-DCS (GSM 7-bit)
    // 20506291731408            TP-SCTS 2002-05-26 19:37:41, zone octet 08: sign bit, 0 quarters
    // 0C C8F71D14969741F977FD07 12 septets: "How are you?"
    let d = deliver(
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07",
        true,
    );
    assert_eq!(
        d.smsc.as_ref().map(|a| a.value.as_str()),
        Some("+27381000015")
    );
    assert_eq!(d.sender.ton, TypeOfNumber::Subscriber);
    assert_eq!((d.sender.npi, d.sender.value.as_str()), (8, "17738475488"));
    assert_eq!(d.timestamp, Some(at("2002-05-26T19:37:41+00:00")));
    assert!(d.warnings.is_empty());
    assert_eq!(d.user_data.text, "How are you?");
    assert_eq!(d.user_data.encoding, Encoding::Gsm7);
    assert!(!d.more_messages && !d.status_report_indication && !d.reply_path);
    assert_eq!((d.pid, d.dcs, d.message_class), (0, 0, None));
    assert_eq!(d.user_data.concat, None);
}

#[test]
fn reserved_message_type_reads_as_deliver() {
    // TS 23.040 §9.2.3.1: TP-MTI 11 is processed as an SMS-DELIVER.
    let d = deliver(
        "070BC87137485784F80000205062917314080CC8F71D14969741F977FD07",
        false,
    );
    assert_eq!(d.user_data.text, "How are you?");
}

#[test]
fn deliver_without_smsc_prefix() {
    let d = deliver(
        "040BC87137485784F80000205062917314080CC8F71D14969741F977FD07",
        false,
    );
    assert_eq!(d.smsc, None);
    assert_eq!(d.user_data.text, "How are you?");
}

#[test]
fn deliver_multipart_8_bit_reference() {
    // 44                 DELIVER, TP-MMS, TP-UDHI
    // 0B 91 1346610089F6 +31641600986
    // 00 00 42704031000000  2024-07-04 13:00:00 +00:00
    // 09                 9 septets: 7 of header (6 octets + 1 fill bit) and "Hi"
    // 05 00 03 A7 02 01  concat ref 0xA7, 2 parts, part 1
    // 90 69              'H' (0x48) at bit 49: 0x48 << 1 = 0x90; 'i' (0x69) at bit 56
    let d = deliver(
        "440B911346610089F600004270403100000009050003A702019069",
        false,
    );
    assert_eq!(d.sender.value, "+31641600986");
    assert_eq!(d.user_data.text, "Hi");
    assert_eq!(
        d.user_data.concat,
        Some(Concat {
            reference: 0xA7,
            total: 2,
            sequence: 1
        })
    );
    assert!(!d.status_report_indication && !d.more_messages);
}

#[test]
fn deliver_multipart_16_bit_reference_negative_zone() {
    // 06 08 04 12 34 02 01  concat ref 0x1234, 2 parts, part 1: 7 octets = 8 septets, no fill
    // C8 34                 'H' at bit 56 (0x48 | low bit of 'i' << 7 = 0xC8), 0x69 >> 1 = 0x34
    // zone octet 0A: sign bit, 2 and 0 → −20 quarters = −05:00
    let d = deliver(
        "440B911346610089F600004270403100000A0A06080412340201C834",
        false,
    );
    assert_eq!(d.user_data.text, "Hi");
    assert_eq!(
        d.user_data.concat,
        Some(Concat {
            reference: 0x1234,
            total: 2,
            sequence: 1
        })
    );
    assert_eq!(
        d.timestamp.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-07-04T13:00:00-05:00")
    );
}

#[test]
fn deliver_alphanumeric_sender_and_extension_table() {
    // TP-OA "MyBank": 6 septets = 42 bits = 11 semi-octets, TON 5 (alphanumeric) NPI 0.
    // M=4D y=79 B=42 a=61 n=6E k=6B packed LSB first: 4D|1<<7 = CD; 79>>1|2<<6 = BC;
    // 42>>2|1<<5 = 30; 61>>3|E<<4 = EC; 6E>>4|6B<<3 = 5E; 6B>>5 = 03.
    // TP-UD: 02 9B32 = ESC (0x1B) + 0x65 = '€': 0x1B | (0x65 & 1) << 7 = 0x9B, 0x65 >> 1 = 0x32.
    let sender = Address::parse("MyBank").unwrap();
    let mut pdu = vec![0x04];
    address::write_address(&sender, &mut pdu).unwrap();
    assert_eq!(pdu[1..], [0x0B, 0xD0, 0xCD, 0xBC, 0x30, 0xEC, 0x5E, 0x03]);
    pdu.extend_from_slice(&[
        0x00, 0x00, 0x42, 0x70, 0x40, 0x31, 0x00, 0x00, 0x00, 0x02, 0x9B, 0x32,
    ]);
    let d = match decode(&pdu, false).unwrap() {
        Pdu::Deliver(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(d.sender.ton, TypeOfNumber::Alphanumeric);
    assert_eq!(d.sender.value, "MyBank");
    assert_eq!(d.user_data.text, "€");
}

#[test]
fn deliver_ucs2_emoji_and_flash_class() {
    // DCS 18: general group, class 0 (flash), UCS-2. UD: D83D DE00 = U+1F600.
    let d = deliver("040B911346610089F600184270403100000004D83DDE00", false);
    assert_eq!(d.user_data.encoding, Encoding::Ucs2);
    assert_eq!(d.user_data.text, "😀");
    assert_eq!(d.message_class, Some(0));
}

#[test]
fn deliver_turkish_locking_shift() {
    // UDH 03 25 01 01: locking shift, Turkish. 4 octets = 32 bits → 5 septets, 3 fill bits.
    // 'Ş' (0x1C) at bit 35: 0x1C << 3 = 0xE0. 'ş' (0x1D) at bit 42: 0x1D << 2 = 0x74.
    let d = deliver(
        "440B911346610089F60000427040310000000703250101E07400",
        false,
    );
    assert_eq!(d.user_data.locking_shift, Some(gsm7::TURKISH));
    assert_eq!(d.user_data.text, "Şş");
}

#[test]
fn deliver_8_bit_with_ports() {
    // 0x44, DCS 04 (8-bit). UD: 06 05 04 0B84 23F0 (ports 2948 ← 9200), then 01 02.
    let d = deliver(
        "440B911346610089F6000442704031000000090605040B8423F00102",
        false,
    );
    assert_eq!(d.user_data.encoding, Encoding::EightBit);
    assert_eq!(d.user_data.text, "0102");
    assert_eq!(
        d.user_data.ports,
        Some(Ports {
            destination: 2948,
            origin: 9200
        })
    );
}

#[test]
fn submit_vector_from_the_common_worked_example() {
    // 00 SMSC from the SIM; 11 SUBMIT with TP-VPF relative; 00 TP-MR;
    // 0B 91 6407281553F8 +46708251358; 00 00; AA = 170 → (170 − 166) = 4 days;
    // 0A E8329BFD4697D9EC37 "hellohello".
    let hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    let s = submit(hex);
    assert_eq!(s.recipient.value, "+46708251358");
    assert_eq!(
        s.validity,
        Some(Validity::Relative(Duration::from_secs(4 * 86400)))
    );
    assert_eq!(s.user_data.text, "hellohello");
    assert!(!s.status_report_request);

    let recipient = Address::parse("+46708251358").unwrap();
    let options = SubmitOptions {
        validity: Some(Duration::from_secs(4 * 86400)),
        ..SubmitOptions::default()
    };
    let parts = encode_submit(&recipient, "hellohello", &options).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].hex(), hex);
    assert_eq!(parts[0].tpdu_length, 23);
}

#[test]
fn submit_with_status_report_and_no_validity() {
    let recipient = Address::parse("+46708251358").unwrap();
    let options = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let parts = encode_submit(&recipient, "hellohello", &options).unwrap();
    // First octet 0x21: SUBMIT, TP-SRR; no TP-VP.
    assert_eq!(
        parts[0].hex(),
        "0021000B916407281553F800000AE8329BFD4697D9EC37"
    );
    assert_eq!(parts[0].tpdu_length, 22);
    let s = submit(&parts[0].hex());
    assert!(s.status_report_request);
    assert_eq!(s.validity, None);
}

#[test]
fn submit_multipart_gsm7_and_ucs2() {
    let recipient = Address::parse("+31641600986").unwrap();
    let text = "x".repeat(200);
    let options = SubmitOptions {
        concat_reference: 0x42,
        ..SubmitOptions::default()
    };
    let parts = encode_submit(&recipient, &text, &options).unwrap();
    assert_eq!(parts.len(), 2);
    for (index, part) in parts.iter().enumerate() {
        let s = submit(&part.hex());
        assert_eq!(part.bytes[1], 0x41, "TP-UDHI set");
        assert_eq!(
            s.user_data.concat,
            Some(Concat {
                reference: 0x42,
                total: 2,
                sequence: index as u8 + 1
            })
        );
        assert_eq!(part.tpdu_length, part.bytes.len() - 1);
    }
    assert_eq!(submit(&parts[0].hex()).user_data.text.len(), 153);
    // 160 septets = 140 octets of TP-UD, the most a part holds.
    assert!(parts.iter().all(|p| p.bytes.len() <= 1 + 13 + 1 + 140));

    let text = "Привет 😀 ".repeat(10);
    let parts = encode_submit(&recipient, &text, &options).unwrap();
    let joined: String = parts
        .iter()
        .map(|p| submit(&p.hex()).user_data.text)
        .collect();
    assert_eq!(joined, text);
    assert_eq!(parts.len(), plan(&text, true, false).parts);
}

#[test]
fn submit_over_the_cap_says_how_many_parts() {
    let recipient = Address::parse("+31641600986").unwrap();
    let options = SubmitOptions {
        max_parts: Some(2),
        ..SubmitOptions::default()
    };
    assert_eq!(
        encode_submit(&recipient, &"y".repeat(400), &options),
        Err(PduError::TooManyParts { parts: 3, max: 2 })
    );
    assert!(matches!(
        encode_submit(&Address::empty(), "hi", &SubmitOptions::default()),
        Err(PduError::InvalidAddress { .. })
    ));
}

#[test]
fn submit_with_smart_encoding() {
    let recipient = Address::parse("0123456").unwrap();
    let parts = encode_submit(&recipient, "It\u{2019}s", &SubmitOptions::default()).unwrap();
    let s = submit(&parts[0].hex());
    assert_eq!((s.dcs, s.user_data.text.as_str()), (0x00, "It's"));
    assert_eq!(s.recipient.value, "0123456");
    let options = SubmitOptions {
        smart_encoding: false,
        ..SubmitOptions::default()
    };
    let parts = encode_submit(&recipient, "It\u{2019}s", &options).unwrap();
    let s = submit(&parts[0].hex());
    assert_eq!((s.dcs, s.user_data.text.as_str()), (0x08, "It\u{2019}s"));
}

#[test]
fn status_report_vector_and_classes() {
    // 00 no SMSC; 06 STATUS-REPORT, TP-MMS; D6 TP-MR; 0B 91 1326880736F4 +31628870634;
    // 11101171955140 SCTS 2011-01-11 17:59:15, zone 40 → 4 quarters = +01:00;
    // 11101171957140 DT 2011-01-11 17:59:17 +01:00; 00 TP-ST delivered.
    let hex = "0006D60B911326880736F4111011719551401110117195714000";
    let Pdu::StatusReport(r) = decode_hex(hex, true).unwrap() else {
        panic!("not a status report");
    };
    assert_eq!(r.message_reference, 0xD6);
    assert_eq!(r.recipient.value, "+31628870634");
    let (timestamp, discharge_time) = (r.timestamp.unwrap(), r.discharge_time.unwrap());
    assert_eq!(timestamp.to_rfc3339(), "2011-01-11T17:59:15+01:00");
    assert_eq!(discharge_time.to_rfc3339(), "2011-01-11T17:59:17+01:00");
    assert!(r.warnings.is_empty());
    assert_eq!(r.status, 0);
    assert_eq!(r.status_class(), StatusClass::Delivered);

    let smsc = Address::empty();
    let bytes = encode_status_report(&smsc, 0xD6, &r.recipient, timestamp, discharge_time, 0);
    assert_eq!(user_data::hex_upper(&bytes), hex);

    for (status, class) in [
        (0x00, StatusClass::Delivered),
        (0x1F, StatusClass::Delivered),
        (0x20, StatusClass::Pending),
        (0x3F, StatusClass::Pending),
        (0x40, StatusClass::Failed),
        (0x60, StatusClass::Failed),
        (0xFF, StatusClass::Failed),
    ] {
        let bytes = encode_status_report(&smsc, 1, &r.recipient, timestamp, discharge_time, status);
        let Ok(Pdu::StatusReport(report)) = decode(&bytes, true) else {
            panic!("status report {status:#04X}");
        };
        assert_eq!((report.status, report.status_class()), (status, class));
    }
}

#[test]
fn a_failed_status_says_why_in_words_with_its_value() {
    assert_eq!(
        failure_text(0x46),
        "not delivered: the message expired before it could be delivered (TP-ST 0x46)"
    );
    assert_eq!(
        failure_text(0x44),
        failure_text(0x64).replace("0x64", "0x44")
    );
    assert_eq!(
        failure_text(0x7F),
        "not delivered: the network reported a permanent failure (TP-ST 0x7F)"
    );
}

#[test]
fn status_report_optional_parameters() {
    // TP-PI 07: PID, DCS and UD follow: 00, 00, 02 "Hi" (C834).
    let hex = "0006D60B911326880736F411101171955140111011719571400007000002C834";
    let Pdu::StatusReport(r) = decode_hex(hex, true).unwrap() else {
        panic!("not a status report");
    };
    assert_eq!((r.pid, r.dcs), (Some(0), Some(0)));
    assert_eq!(r.user_data.map(|ud| ud.text), Some("Hi".to_owned()));
    // A broken optional tail does not lose the report.
    let hex = "0006D60B911326880736F41110117195514011101171957140000704";
    let Pdu::StatusReport(r) = decode_hex(hex, true).unwrap() else {
        panic!("not a status report");
    };
    assert_eq!((r.status, r.pid), (0, None));
}

#[test]
fn deliver_round_trip_multipart() {
    let smsc = Address::parse("+447785016005").unwrap();
    let sender = Address::parse("+60177872890").unwrap();
    let time = FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 25, 19, 0, 0)
        .unwrap();
    let text = format!("{}{}", "€uro ".repeat(40), "end");
    let pdus = encode_deliver(&smsc, &sender, &text, time, 0x1A7).unwrap();
    assert_eq!(pdus.len(), plan(&text, false, false).parts);
    let mut joined = String::new();
    for (index, pdu) in pdus.iter().enumerate() {
        let Ok(Pdu::Deliver(d)) = decode(pdu, true) else {
            panic!("part {index}");
        };
        assert_eq!(d.smsc.as_ref(), Some(&smsc));
        assert_eq!(d.sender, sender);
        assert_eq!(d.timestamp, Some(time));
        let concat = d.user_data.concat.unwrap();
        assert_eq!(
            (concat.reference, concat.sequence as usize),
            (0xA7, index + 1)
        );
        joined.push_str(&d.user_data.text);
    }
    assert_eq!(joined, text);
}

#[test]
fn malformed_inputs_are_typed_errors() {
    type Check = fn(&PduError) -> bool;
    let cases: &[(&str, bool, Check)] = &[
        ("", true, |e| matches!(e, PduError::Empty)),
        ("0", true, |e| matches!(e, PduError::OddHexLength(1))),
        ("0G", true, |e| {
            matches!(
                e,
                PduError::NotHex {
                    position: 1,
                    character: 'G'
                }
            )
        }),
        ("07", true, |e| {
            matches!(
                e,
                PduError::Truncated {
                    field: "SMSC address",
                    ..
                }
            )
        }),
        ("0003", true, |e| {
            matches!(e, PduError::Truncated { field: "TP-OA", .. })
        }),
        ("0004", true, |e| {
            matches!(e, PduError::Truncated { field: "TP-OA", .. })
        }),
        ("00041591", true, |e| {
            matches!(e, PduError::AddressLength { length: 21, .. })
        }),
        // Truncated in TP-SCTS.
        ("00040B911346610089F600004270", true, |e| {
            matches!(
                e,
                PduError::Truncated {
                    field: "TP-SCTS",
                    ..
                }
            )
        }),
        // Month 13 in TP-SCTS *and* user data cut short: two faults, the strict error.
        ("00040B911346610089F6000042314031000000", true, |e| {
            matches!(
                e,
                PduError::Truncated {
                    field: "TP-UDL",
                    ..
                }
            )
        }),
        ("00040B911346610089F600004231403100000005C8", true, |e| {
            matches!(e, PduError::Timestamp { .. })
        }),
        // UDHI set, the header cut off by the end of the PDU.
        ("00440B911346610089F6000042704031000000140500", true, |e| {
            matches!(e, PduError::Truncated { field: "TP-UD", .. })
        }),
        // TP-UDL 200 septets.
        ("00040B911346610089F6000042704031000000C8", true, |e| {
            matches!(
                e,
                PduError::UserDataLength {
                    length: 200,
                    max: 160
                }
            )
        }),
        // UDHI set, UDHL overruns.
        ("00440B911346610089F6000042704031000000020900", true, |e| {
            matches!(e, PduError::Header(_))
        }),
        // Filler in the middle of a number.
        ("00040491F1320000", true, |e| {
            matches!(e, PduError::AddressFiller { .. })
        }),
        // SUBMIT cut in TP-VP.
        ("0011000B916407281553F80000", true, |e| {
            matches!(e, PduError::Truncated { field: "TP-VP", .. })
        }),
        // STATUS-REPORT without TP-ST.
        (
            "0006D60B911326880736F41110117195514011101171957140",
            true,
            |e| matches!(e, PduError::Truncated { field: "TP-ST", .. }),
        ),
    ];
    for (hex, smsc, check) in cases {
        match decode_hex(hex, *smsc) {
            Err(error) => {
                assert!(check(&error), "{hex}: unexpected {error:?}");
                assert!(!error.to_string().is_empty());
            }
            Ok(pdu) => panic!("{hex} decoded: {pdu:?}"),
        }
    }
}

#[test]
fn status_report_with_non_bcd_times_still_says_what_happened() {
    // The delivered report above, with the zone octets as some networks send them: TP-SCTS
    // zone F1 (units semi-octet F) and TP-DT zone A4 (units A): neither is a decimal digit
    // (TS 23.040 §9.2.3.11). TP-MR, TP-RA and TP-ST are intact.
    let hex = "0006D60B911326880736F4111011719551F11110117195714A00";
    let hex = hex.replace("714A00", "71A400");
    let Pdu::StatusReport(r) = decode_hex(&hex, true).unwrap() else {
        panic!("not a status report");
    };
    assert_eq!(
        (r.message_reference, r.recipient.value.as_str(), r.status),
        (0xD6, "+31628870634", 0)
    );
    assert_eq!((r.timestamp, r.discharge_time), (None, None));
    assert_eq!(
        r.warnings,
        [
            Warning::UnreadableTime {
                field: "TP-SCTS",
                reason: "not a decimal digit"
            },
            Warning::UnreadableTime {
                field: "TP-DT",
                reason: "not a decimal digit"
            }
        ]
    );
    // A non-BCD seconds digit, and an impossible date, are unreadable the same way.
    for hex in [
        "0006D60B911326880736F411101171955F401110117195714000",
        "0006D60B911326880736F4113111719551401110117195714000",
    ] {
        let Pdu::StatusReport(r) = decode_hex(hex, true).unwrap() else {
            panic!("{hex}: not a status report");
        };
        assert_eq!((r.timestamp, r.warnings.len()), (None, 1), "{hex}");
        assert!(r.discharge_time.is_some());
    }
}

#[test]
fn deliver_without_a_readable_scts_keeps_its_text() {
    // "How are you?" with the TP-SCTS zone octet A8: units semi-octet A is no digit.
    let d = deliver(
        "07917283010010F5040BC87137485784F800002050629173140A80CC8F71D14969741F977FD07"
            .replace("140A80C", "14A80C")
            .as_str(),
        true,
    );
    assert_eq!(d.timestamp, None);
    assert_eq!(d.user_data.text, "How are you?");
    assert_eq!(d.sender.value, "17738475488");
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].to_string().contains("TP-SCTS"));
}

#[test]
fn truncated_user_data_is_decoded_as_far_as_it_goes() {
    // "How are you?" needs 11 octets of TP-UD (12 septets); only 4 arrive: 4 septets.
    let d = deliver(
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14",
        true,
    );
    assert_eq!(d.user_data.text, "How …[truncated]");
    assert!(d.user_data.truncated);
    assert_eq!(
        d.warnings,
        [Warning::TruncatedUserData {
            needed: 11,
            available: 4
        }]
    );
    assert!(d.timestamp.is_some());
    // UCS-2 "Привет" (12 octets) with 9 arrived: four characters and half of the fifth.
    let d = deliver(
        "040B911346610089F60008427040310000000C041F04400438043204",
        false,
    );
    assert_eq!(d.user_data.text, "Прив…[truncated]");
    assert_eq!(d.user_data.encoding, Encoding::Ucs2);
}

#[test]
fn ucs2_under_a_gsm7_coding_scheme_is_read_as_ucs2() {
    // TP-DCS 00 claims GSM 7-bit; TP-UDL 0C counts the 12 octets of UCS-2 "Привет".
    let d = deliver(
        "040B911346610089F60000427040310000000C041F04400438043204350442",
        false,
    );
    assert_eq!(d.user_data.text, "Привет");
    assert_eq!(d.user_data.encoding, Encoding::Ucs2);
    assert_eq!(d.dcs, 0x00);
    assert_eq!(d.warnings, [Warning::Ucs2UnderGsm7Coding]);
}

#[test]
fn damage_in_two_places_is_still_refused() {
    // The status report read without its SMSC field: the empty SMSC octet becomes a DELIVER's
    // first octet, TP-SCTS lands on non-BCD octets and TP-UD runs past the end. Two faults
    // at once is a PDU read from the wrong place, not a sloppy network: the strict error.
    let error = decode_hex(
        "0006D60B911326880736F4111011719551401110117195714000",
        false,
    )
    .unwrap_err();
    assert!(matches!(error, PduError::Timestamp { .. }), "{error:?}");
}

#[test]
fn salvage_reads_the_sender_of_an_undecodable_deliver() {
    // TP-OA +31641600986, then a TP-UDL of 200 septets: undecodable.
    let bytes = hex_to_bytes("00040B911346610089F6000042704031000000C8").unwrap();
    assert!(decode(&bytes, true).is_err());
    let salvaged = salvage(&bytes, true);
    assert!(!salvaged.status_report);
    assert_eq!(
        salvaged.sender.map(|s| s.value),
        Some("+31641600986".to_owned())
    );
    // A status report's TP-MTI is told even when nothing else is.
    assert!(salvage(&[0x00, 0x06], true).status_report);
    // An address that overruns: no sender.
    assert_eq!(salvage(&[0x00, 0x04, 0x15, 0x91], true).sender, None);
    assert_eq!(salvage(&[], true), Salvage::default());
}

#[test]
fn decode_hex_accepts_lower_case_and_whitespace() {
    let d = deliver(
        " 040bc87137485784f80000205062917314080cc8f71d14969741f977fd07\r\n",
        false,
    );
    assert_eq!(d.user_data.text, "How are you?");
}

/// Text drawn from the GSM alphabet, its extension table, and beyond (accents, Cyrillic,
/// CJK, emoji, typography that smart encoding replaces).
fn text_strategy() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        4 => "[a-zA-Z0-9 .,!?@£$]",
        1 => "[€\\[\\]{}|^~\\\\\u{0C}]",
        1 => "[ÄÖÑÜßéèà\n\r]",
        1 => "[\u{2018}\u{2019}\u{201C}\u{201D}\u{2013}\u{2026}\u{00A0}]",
        1 => "[жЯ中文çő]",
        1 => "[😀🎉👍🏽]",
    ];
    proptest::collection::vec(pieces, 0..400).prop_map(|pieces| pieces.concat())
}

/// The fewest parts a splitter that keeps pairs whole can reach: one if the whole fits,
/// otherwise the most units per part is `capacity`, and each cut can waste at most one.
fn parts_bounds(units: usize, single: usize, capacity: usize) -> (usize, usize) {
    if units <= single {
        (1, 1)
    } else {
        (units.div_ceil(capacity), units.div_ceil(capacity - 1))
    }
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_text_back(text in text_strategy(), force_ucs2: bool, smart: bool) {
        let recipient = Address::parse("+60177872890").unwrap();
        let options = SubmitOptions { force_ucs2, smart_encoding: smart, concat_reference: 7, ..SubmitOptions::default() };
        let planned = plan(&text, smart, force_ucs2);
        let parts = encode_submit(&recipient, &text, &options).unwrap();
        prop_assert_eq!(parts.len(), planned.parts);
        let mut joined = String::new();
        for part in &parts {
            prop_assert_eq!(part.tpdu_length + 1, part.bytes.len());
            let Ok(Pdu::Submit(s)) = decode(&part.bytes, true) else {
                return Err(TestCaseError::fail("part does not decode"));
            };
            prop_assert_eq!(s.user_data.encoding, planned.encoding);
            joined.push_str(&s.user_data.text);
        }
        prop_assert_eq!(&joined, &planned.text);
        if planned.replacements.is_empty() {
            prop_assert_eq!(&joined, &text);
        }
        let (low, high) = match planned.encoding {
            Encoding::Gsm7 => parts_bounds(gsm7::septet_count(&planned.text).unwrap(), 160, 153),
            _ => parts_bounds(planned.text.encode_utf16().count(), 70, 67),
        };
        prop_assert!(low <= parts.len() && parts.len() <= high, "{} parts, bounds {}..={}", parts.len(), low, high);
    }

    #[test]
    fn gsm_text_without_pairs_takes_exactly_the_fewest_parts(text in "[a-z ]{0,1000}") {
        let septets = text.len();
        let expected = if septets <= 160 { 1 } else { septets.div_ceil(153) };
        prop_assert_eq!(plan(&text, true, false).parts, expected);
    }

    #[test]
    fn what_the_codec_encodes_decodes_without_warnings(text in text_strategy(), zone in -47i32..=47) {
        let smsc = Address::parse("+60120000015").unwrap();
        let sender = Address::parse("+60177872890").unwrap();
        let time = FixedOffset::east_opt(zone * 15 * 60)
            .unwrap()
            .with_ymd_and_hms(2026, 2, 28, 23, 59, 59)
            .unwrap();
        for pdu in encode_deliver(&smsc, &sender, &text, time, 9).unwrap() {
            let Ok(Pdu::Deliver(d)) = decode(&pdu, true) else {
                return Err(TestCaseError::fail("part does not decode"));
            };
            prop_assert!(d.warnings.is_empty(), "{:?}", d.warnings);
            prop_assert_eq!(d.timestamp, Some(time));
            prop_assert!(!d.user_data.truncated);
        }
        let report = encode_status_report(&smsc, 3, &sender, time, time, 0x40);
        let Ok(Pdu::StatusReport(r)) = decode(&report, true) else {
            return Err(TestCaseError::fail("report does not decode"));
        };
        prop_assert!(r.warnings.is_empty());
        prop_assert_eq!((r.timestamp, r.discharge_time), (Some(time), Some(time)));
    }

    #[test]
    fn any_bytes_decode_to_a_value_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200), smsc: bool) {
        let _ = decode(&bytes, smsc);
    }

    #[test]
    fn mutated_valid_pdus_never_panic(index in 0usize..60, value: u8, cut in 0usize..60) {
        let mut bytes = hex_to_bytes("07917283010010F5440BC87137485784F8000820506291731408110500030A0201D83DDE00D83DDE00").unwrap();
        let index = index % bytes.len();
        bytes[index] = value;
        bytes.truncate(bytes.len() - cut.min(bytes.len()));
        let _ = decode(&bytes, true);
    }
}
