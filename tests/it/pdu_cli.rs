//! `smsgate pdu decode|encode` as a user runs them: the real binary, its stdout, stderr and
//! exit status.

use std::process::{Command, Output};

fn smsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the smsgate binary runs")
}

#[test]
fn decode_prints_one_json_object() {
    let output = smsgate(&[
        "pdu",
        "decode",
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(stdout.lines().count(), 1);
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(value["type"], "deliver");
    assert_eq!(value["smsc"], "+27381000015");
    assert_eq!(value["text"], "How are you?");
}

#[test]
fn decode_without_smsc_prefix() {
    let output = smsgate(&[
        "pdu",
        "decode",
        "--no-smsc",
        "0006D60B911326880736F4111011719551401110117195714000",
    ]);
    // Without --no-smsc the leading 00 is the (empty) SMSC field; with it, 00 is a DELIVER's
    // first octet and the rest no longer fits: a clean failure, not a wrong answer.
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let output = smsgate(&[
        "pdu",
        "decode",
        "--no-smsc",
        "06D60B911326880736F4111011719551401110117195714000",
    ]);
    assert!(output.status.success(), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(value["type"], "status_report");
    assert_eq!(value["status_class"], "delivered");
}

#[test]
fn undecodable_input_exits_1_with_one_line_on_stderr() {
    for hex in [
        "0011ZZ",
        "07917283",
        // Month 13 in TP-SCTS and TP-UD cut short: two faults, not repaired.
        "00040B911346610089F600004231403100000005C8",
        // Non-hex in the middle is not framing junk.
        "07917283010010F5040BC871374857ZZF80000205062917314080CC8F71D14969741F977FD07",
    ] {
        let output = smsgate(&["pdu", "decode", hex]);
        assert_eq!(output.status.code(), Some(1), "{hex}: {output:?}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr).expect("UTF-8");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot decode PDU"), "{stderr}");
    }
}

#[test]
fn encode_prints_length_and_hex_per_part() {
    let output = smsgate(&[
        "pdu",
        "encode",
        "--to",
        "+46708251358",
        "--validity",
        "4d",
        "hellohello",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).expect("UTF-8"),
        "23 0011000B916407281553F80000AA0AE8329BFD4697D9EC37\n"
    );
    let long = "a".repeat(200);
    let output = smsgate(&[
        "pdu",
        "encode",
        "--to",
        "+46708251358",
        "--max-parts",
        "1",
        &long,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs 2 parts"));
}

#[test]
fn decode_shows_what_it_worked_around_as_warnings() {
    // A delivered report whose TP-SCTS and TP-DT zones (F1, A4) are not BCD.
    let output = smsgate(&[
        "pdu",
        "decode",
        "0006D60B911326880736F4111011719551F1111011719571A400",
    ]);
    assert!(output.status.success(), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(value["type"], "status_report");
    assert_eq!(value["status_class"], "delivered");
    assert_eq!(value["message_reference"], 0xD6);
    assert!(value.get("timestamp").is_none() && value.get("discharge_time").is_none());
    let warnings = value["warnings"].as_array().expect("a warnings list");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap_or("").contains("TP-SCTS"));
    assert!(warnings[1].as_str().unwrap_or("").contains("TP-DT"));

    // A PDU pasted with the quote some phones put after it: framing, noted, not refused.
    let output = smsgate(&[
        "pdu",
        "decode",
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07\"",
    ]);
    assert!(output.status.success(), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(value["text"], "How are you?");
    assert_eq!(value["warnings"].as_array().map(Vec::len), Some(1));

    // A clean PDU has no warnings key at all (its output is what it always was).
    let output = smsgate(&[
        "pdu",
        "decode",
        "07917283010010F5040BC87137485784F80000205062917314080CC8F71D14969741F977FD07",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(value.get("warnings").is_none(), "{value}");
}
