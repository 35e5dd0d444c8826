//! End to end: every real SMS arrives. The real gateway on the simulated modem, switched to
//! behave like the devices and networks that broke it (a quote after the PDU, a space for a
//! line end, FF padding, no `OK` after `+CPIN`, non-BCD time stamps), and fed PDUs written by
//! hand from TS 23.040 / 23.038: empty, binary, cut short, UCS-2 under a GSM 7-bit coding, and
//! undecodable. Nothing is dropped, nothing is posted with an empty text, and
//! `smsgate pdu decode` reads each PDU as the daemon does.

use std::time::Duration;

use serde_json::Value;
use smsgate::sim::{Quirk, Quirks, SimOptions};

use crate::harness::{CONTACT, Harness, TOKEN, wait_for_status, wait_until};

const LONG: Duration = Duration::from_secs(60);

/// TP-OA +60123456789 (CONTACT): 11 digits, international, semi-octets swapped.
const OA: [u8; 8] = [0x0B, 0x91, 0x06, 0x21, 0x43, 0x65, 0x87, 0xF9];

fn sim(quirks: &[Quirk]) -> SimOptions {
    SimOptions {
        report_delay: Duration::from_millis(100),
        quirks: quirks
            .iter()
            .fold(Quirks::default(), |all, &quirk| all.with(quirk, true)),
        ..SimOptions::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// An SMS-DELIVER from CONTACT with an empty SMSC field, TP-SCTS 2026-05-01 10:00:`second`
/// +08:00 (TS 23.040 §9.2.3.11: swapped BCD, zone 32 quarters = "23"), then TP-UDL and the
/// user data as given.
fn deliver(dcs: u8, udhi: bool, second: u8, udl: u8, ud: &[u8]) -> String {
    let mut pdu = vec![0x00, if udhi { 0x44 } else { 0x04 }];
    pdu.extend(OA);
    pdu.extend([0x00, dcs]);
    let second = (second / 10) | ((second % 10) << 4);
    pdu.extend([0x62, 0x50, 0x10, 0x01, 0x00, second, 0x23]);
    pdu.push(udl);
    pdu.extend(ud);
    hex(&pdu)
}

/// The texts of the `message` events respond.io accepted, sorted.
fn texts(events: &[(String, Value)]) -> Vec<String> {
    let mut texts: Vec<String> = events
        .iter()
        .filter(|(_, event)| event["type"] == "message")
        .filter_map(|(_, event)| event["message"]["text"].as_str().map(str::to_owned))
        .collect();
    texts.sort();
    texts
}

async fn wait_for_texts(h: &Harness, count: usize) -> Vec<(String, Value)> {
    match h
        .standin
        .wait_for(LONG, |events| texts(events).len() >= count)
        .await
    {
        Ok(events) => events,
        Err(events) => panic!("{count} messages never arrived: {:?}", texts(&events)),
    }
}

async fn sim_emptied(h: &Harness) {
    wait_until(LONG, "the SIM storage is emptied", || async {
        h.sim.stored_count().await == 0
    })
    .await;
}

/// `smsgate pdu decode HEX`: its JSON, or `None` when it exits non-zero.
fn cli_decode(hex: &str) -> Option<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["pdu", "decode", hex])
        .env("RUST_LOG", "off")
        .output()
        .expect("smsgate runs");
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_sms_without_readable_times_still_arrive() {
    let h = Harness::new(sim(&[Quirk::NonBcdTimestamps]), "").await;
    let gw = h.start().await;
    // Status reports whose TP-SCTS and TP-DT zones are not BCD settle their message.
    let mid = h.send_text(gw.address, CONTACT, "did it arrive?").await;
    wait_for_status(&h.standin, &mid, "delivered", LONG).await;
    // An SMS whose TP-SCTS is not BCD arrives, stamped with the time it was received.
    let before = chrono::Utc::now().timestamp_millis();
    h.sim.inject_sms(CONTACT, "no clock").await.expect("inject");
    let events = wait_for_texts(&h, 1).await;
    let after = chrono::Utc::now().timestamp_millis();
    let (_, event) = events
        .iter()
        .find(|(_, event)| event["type"] == "message")
        .expect("the message");
    assert_eq!(event["message"]["text"], "no clock");
    let stamped = event["timestamp"].as_i64().expect("timestamp");
    assert!(
        (before..=after).contains(&stamped),
        "{before} ≤ {stamped} ≤ {after}"
    );
    sim_emptied(&h).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_framed_as_real_devices_frame_them_reach_respond_io() {
    let h = Harness::new(sim(&[]), "").await;
    let gw = h.start().await;
    let cases = [
        (&[Quirk::TrailingQuote][..], "a quote after the PDU"),
        (&[Quirk::SpaceSeparator], "a space for CR LF"),
        (&[Quirk::FfPadding], "FF padding"),
        (
            &[
                Quirk::TrailingQuote,
                Quirk::SpaceSeparator,
                Quirk::FfPadding,
            ],
            "all three",
        ),
    ];
    for (count, (quirks, text)) in cases.iter().enumerate() {
        for &quirk in *quirks {
            h.sim.set_quirk(quirk, true).await;
        }
        h.sim.inject_sms(CONTACT, text).await.expect("inject");
        let events = wait_for_texts(&h, count + 1).await;
        assert!(texts(&events).contains(&(*text).to_owned()), "{text}");
        sim_emptied(&h).await;
        for &quirk in *quirks {
            h.sim.set_quirk(quirk, false).await;
        }
    }
    // The storage sweep (AT+CMGL) frames the same way: an SMS stored while the gateway was
    // down is found at start-up.
    gw.stop().await;
    for quirk in [
        Quirk::TrailingQuote,
        Quirk::SpaceSeparator,
        Quirk::FfPadding,
    ] {
        h.sim.set_quirk(quirk, true).await;
    }
    h.sim
        .inject_sms(CONTACT, "stored while down")
        .await
        .expect("inject");
    let gw = h.start().await;
    let events = wait_for_texts(&h, cases.len() + 1).await;
    assert!(texts(&events).contains(&"stored while down".to_owned()));
    sim_emptied(&h).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_that_omits_the_ok_after_cpin_serves_the_gateway() {
    let h = Harness::new(sim(&[Quirk::NoOkAfterCpin]), "").await;
    let gw = h.start().await;
    let mid = h
        .send_text(gw.address, CONTACT, "after a silent CPIN")
        .await;
    wait_for_status(&h.standin, &mid, "delivered", LONG).await;
    h.sim.inject_sms(CONTACT, "and back").await.expect("inject");
    let events = wait_for_texts(&h, 1).await;
    assert_eq!(texts(&events), ["and back"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sms_is_posted_with_an_empty_text() {
    let h = Harness::new(sim(&[]), "").await;
    let gw = h.start().await;
    // An SMS with no text at all.
    h.sim.inject_sms(CONTACT, "").await.expect("inject");
    // 8-bit data: a concatenation header (1 part) and nothing after it; binary octets; plain
    // text; a WAP push to port 2948 (hex, as before); a port-addressed SMS with no data.
    let empty_after_header = deliver(0x04, true, 1, 6, &[0x05, 0x00, 0x03, 0xA1, 0x01, 0x01]);
    let binary = deliver(0x04, false, 2, 3, &[0x00, 0x01, 0xFE]);
    let plain = deliver(0x04, false, 3, 11, b"Meet at 5pm");
    let ports = [0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0];
    let mut wap = ports.to_vec();
    wap.extend([0xCA, 0xFE]);
    let wap_push = deliver(0xF5, true, 4, 9, &wap);
    let ports_only = deliver(0xF5, true, 5, 7, &ports);
    // GSM 7-bit "How are you?" (12 septets, 11 octets) with only 4 octets arrived.
    let truncated = deliver(0x00, false, 6, 12, &[0xC8, 0xF7, 0x1D, 0x14]);
    // UCS-2 "Привет" under TP-DCS 00 (GSM 7-bit), TP-UDL counting its 12 octets.
    let cyrillic = [
        0x04, 0x1F, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35, 0x04, 0x42,
    ];
    let ucs2_as_gsm7 = deliver(0x00, false, 7, 12, &cyrillic);
    for pdu in [
        &empty_after_header,
        &binary,
        &plain,
        &wap_push,
        &ports_only,
        &truncated,
        &ucs2_as_gsm7,
    ] {
        h.sim.inject_pdu(pdu).await.expect("inject");
    }
    let events = wait_for_texts(&h, 8).await;
    let mut expected = vec![
        "(empty SMS)",
        "(empty SMS)",
        "(binary SMS, 3 bytes)",
        "Meet at 5pm",
        "CAFE",
        "(empty SMS)",
        "How …[truncated]",
        "Привет",
    ];
    expected.sort();
    assert_eq!(texts(&events), expected);
    assert!(
        events
            .iter()
            .all(|(_, event)| event["type"] != "message" || event["message"]["text"] != ""),
        "an empty text was posted"
    );
    sim_emptied(&h).await;
    // `smsgate pdu decode` reads the same PDUs the same way.
    for (pdu, text) in [(&truncated, "How …[truncated]"), (&ucs2_as_gsm7, "Привет")] {
        let decoded = cli_decode(pdu).expect("the CLI decodes it too");
        assert_eq!(decoded["text"], text, "{decoded}");
        assert_eq!(decoded["warnings"].as_array().map(Vec::len), Some(1));
    }
    gw.stop().await;
}

/// A PDU from CONTACT whose TP-UDL (200 septets) is more than any PDU holds: the sender can
/// be read, the message cannot.
fn too_long(second: u8) -> String {
    deliver(0x00, false, second, 200, &[])
}

/// A PDU whose TP-OA claims 21 digits: nothing after the first octet can be trusted.
fn overrunning_address(tag: u8) -> String {
    hex(&[0x00, 0x04, 0x15, 0x91, tag])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_that_cannot_be_decoded_is_kept_forwarded_counted_and_listed() {
    // Three slots only: five undecodable SMS must not block the storage.
    let options = SimOptions {
        capacity: 3,
        ..sim(&[])
    };
    let h = Harness::new(options, "").await;
    let gw = h.start().await;
    for second in 1..=4 {
        h.sim.inject_pdu(&too_long(second)).await.expect("inject");
    }
    h.sim
        .inject_pdu(&overrunning_address(0x42))
        .await
        .expect("inject");
    h.sim
        .inject_sms(CONTACT, "after the broken ones")
        .await
        .expect("inject");
    let events = wait_for_texts(&h, 5).await;
    let mut expected = vec!["(an SMS that could not be read)"; 4];
    expected.push("after the broken ones");
    assert_eq!(texts(&events), expected);
    assert!(
        events
            .iter()
            .filter(|(_, event)| event["type"] == "message")
            .all(|(contact, _)| contact == CONTACT)
    );
    sim_emptied(&h).await;

    // Counted in /metrics …
    let metrics = h
        .client
        .get(format!("http://{}/metrics", gw.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("smsgate_messages_unreadable_total 5\n"),
        "{metrics}"
    );
    // … and listed by `smsgate status`, with the PDU, its slot and the reason.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["status", "--json", "-c"])
        .arg(&h.config_path)
        .env("RUST_LOG", "off")
        .output()
        .expect("status runs");
    assert!(status.status.success(), "{status:?}");
    let report: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(report["unreadable"], 5);
    let latest = report["unreadable_latest"].as_array().expect("list");
    assert_eq!(latest.len(), 5);
    let overrun = latest
        .iter()
        .find(|row| row["pdu"] == overrunning_address(0x42))
        .expect("the overrunning PDU is listed");
    assert_eq!(overrun["sender"], Value::Null);
    assert_eq!(overrun["forwarded"], false);
    assert!(
        overrun["reason"].as_str().unwrap_or("").contains("TP-OA"),
        "{overrun}"
    );
    assert!(
        overrun["slot"].as_str().unwrap_or("").starts_with("SM:"),
        "{overrun}"
    );
    let long = latest
        .iter()
        .find(|row| row["pdu"] == too_long(1))
        .expect("listed");
    assert_eq!(
        (&long["sender"], &long["forwarded"]),
        (&Value::from(CONTACT), &Value::from(true))
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["status", "-c"])
        .arg(&h.config_path)
        .env("RUST_LOG", "off")
        .output()
        .expect("status runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("unreadable 5 PDU(s)"), "{text}");
    assert!(text.contains(&overrunning_address(0x42)), "{text}");
    // `smsgate pdu decode` refuses them as the daemon did.
    assert_eq!(cli_decode(&too_long(1)), None);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_forward_unreadable_off_they_are_kept_but_not_forwarded() {
    let h = Harness::new(sim(&[]), "[sms]\nforward_unreadable = false\n").await;
    let gw = h.start().await;
    h.sim.inject_pdu(&too_long(9)).await.expect("inject");
    h.sim.inject_sms(CONTACT, "marker").await.expect("inject");
    let events = wait_for_texts(&h, 1).await;
    sim_emptied(&h).await;
    let store = smsgate::store::Store::open(&h.config.store.path)
        .await
        .expect("open the database");
    let (kept, rows) = store.unreadable(10).await.expect("read");
    assert_eq!(kept, 1);
    assert!(!rows[0].forwarded);
    // The marker came after the broken SMS was kept, and nothing else arrived.
    assert_eq!(texts(&events), ["marker"]);
    let later = h.standin.accepted_events();
    assert_eq!(texts(&later), ["marker"]);
    gw.stop().await;
}
