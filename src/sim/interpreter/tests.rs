//! Exchanges with the interpreter, byte for byte as a client sees them.

use super::*;

/// SMS-SUBMIT to +46708251358, "hellohello", no status report (a textbook vector).
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// The same with TP-SRR set (first octet 0x31).
const SUBMIT_SRR: &str = "0031000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// An SMS-DELIVER from +31641600986, "How are you?" (a textbook vector).
const DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

fn deliver() -> Vec<u8> {
    pdu::hex_to_bytes(DELIVER).expect("hex")
}

fn profile() -> Profile {
    Profile {
        manufacturer: "smsgate".into(),
        model: "Simulated GSM modem".into(),
        revision: "SIM-test".into(),
        imei: "356938035643809".into(),
        imsi: "502129876543210".into(),
        echo: true,
        notify: NotifyMode::Cmti,
        reports: ReportMode::Cds,
        capacity: 3,
        first_index: 1,
        smsc: "+60120000015".into(),
        operator: "smsgate sim".into(),
        rssi: 20,
    }
}

fn modem() -> Interpreter {
    Interpreter::new(profile(), None, "12345678".into(), false)
}

/// The bytes of every output effect, as text.
fn text(effects: &[Effect]) -> String {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Output(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn say(modem: &mut Interpreter, input: &str) -> String {
    text(&modem.receive(input.as_bytes()))
}

fn quiet() -> Interpreter {
    let mut m = modem();
    say(&mut m, "ATE0\r");
    m
}

#[test]
fn echo_then_answer_and_ate0() {
    let mut m = modem();
    assert_eq!(say(&mut m, "AT\r"), "AT\r\r\nOK\r\n");
    assert_eq!(say(&mut m, "ATE0\r"), "ATE0\r\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "ATE1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT\r\n"), "AT\r\r\nOK\r\n\n");
}

#[test]
fn byte_by_byte_input_gives_the_same_answer() {
    let mut m = quiet();
    let mut out = String::new();
    for byte in "AT+CSQ\r".bytes() {
        out.push_str(&text(&m.receive(&[byte])));
    }
    assert_eq!(out, "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
}

#[test]
fn identity_and_unknown_commands() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CGMI\r"), "\r\nsmsgate\r\n\r\nOK\r\n");
    assert_eq!(
        say(&mut m, "ATI\r"),
        "\r\nsmsgate\r\nSimulated GSM modem\r\nRevision: SIM-test\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CGSN\r"),
        "\r\n356938035643809\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CIMI\r"),
        "\r\n502129876543210\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+FOO\r"), "\r\nERROR\r\n");
    assert_eq!(say(&mut m, "ATD123;\r"), "\r\nERROR\r\n");
    // Lines that are not commands are ignored, blank lines too.
    assert_eq!(say(&mut m, "hello\r\r"), "");
    // Garbage before the prefix and stray control characters do not spoil a command.
    assert_eq!(say(&mut m, "xx\x1b\x1aAT\r"), "\r\nOK\r\n");
}

#[test]
fn settings_read_back_and_reset() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CMEE=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMEE?\r"), "\r\n+CMEE: 1\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGF=0\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGF=1\r"), "\r\nERROR\r\n");
    assert_eq!(say(&mut m, "AT+CSMS=1\r"), "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CSCS=\"UCS2\"\r"), "\r\nOK\r\n");
    assert_eq!(
        say(&mut m, "AT+CSCS?\r"),
        "\r\n+CSCS: \"UCS2\"\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+CMMS=2\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMMS?\r"), "\r\n+CMMS: 2\r\n\r\nOK\r\n");
    assert_eq!(
        say(&mut m, "AT+CNMI?\r"),
        "\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    );
    // ATZ restores the profile: echo back on, CMEE 0.
    assert_eq!(say(&mut m, "ATZ\r"), "\r\nOK\r\n");
    assert_eq!(
        say(&mut m, "AT+CMEE?\r"),
        "AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n"
    );
}

#[test]
fn several_commands_on_one_line() {
    let mut m = quiet();
    assert_eq!(
        say(&mut m, "AT+CMEE=1;+CSQ;+CMEE?\r"),
        "\r\n+CSQ: 20,99\r\n\r\n+CMEE: 1\r\n\r\nOK\r\n"
    );
    // The first failure ends the line.
    assert_eq!(say(&mut m, "AT+CMEE=0;+NOPE;+CMEE=1\r"), "\r\nERROR\r\n");
    assert_eq!(say(&mut m, "AT+CMEE?\r"), "\r\n+CMEE: 0\r\n\r\nOK\r\n");
}

#[test]
fn registration_signal_and_operator() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CREG?\r"), "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CEREG?\r"), "\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    assert_eq!(
        say(&mut m, "AT+COPS?\r"),
        "\r\n+COPS: 0,0,\"smsgate sim\",0\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+CREG=1\r"), "\r\nOK\r\n");
    assert_eq!(text(&m.set_network(false)), "\r\n+CREG: 2\r\n");
    assert_eq!(say(&mut m, "AT+CREG?\r"), "\r\n+CREG: 1,2\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CGREG?\r"), "\r\n+CGREG: 0,2\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+COPS?\r"), "\r\n+COPS: 0\r\n\r\nOK\r\n");
    assert_eq!(text(&m.set_network(true)), "\r\n+CREG: 1\r\n");
    // Radio off.
    // The URC follows the command's answer.
    assert_eq!(say(&mut m, "AT+CFUN=4\r"), "\r\nOK\r\n\r\n+CREG: 0\r\n");
    assert_eq!(say(&mut m, "AT+CFUN?\r"), "\r\n+CFUN: 4\r\n\r\nOK\r\n");
}

#[test]
fn pin_lock_wrong_pin_and_puk() {
    let mut m = Interpreter::new(profile(), Some("1234".into()), "87654321".into(), false);
    say(&mut m, "ATE0\r");
    assert_eq!(
        say(&mut m, "AT+CPIN?\r"),
        "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+CREG?\r"), "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CIMI\r"), "\r\nERROR\r\n");
    say(&mut m, "AT+CMEE=1\r");
    assert_eq!(say(&mut m, "AT+CIMI\r"), "\r\n+CME ERROR: 11\r\n");
    assert_eq!(say(&mut m, "AT+CPMS?\r"), "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(say(&mut m, "AT+CPIN=\"0000\"\r"), "\r\n+CME ERROR: 16\r\n");
    assert_eq!(say(&mut m, "AT+CPIN=\"1234\"\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CPIN?\r"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CREG?\r"), "\r\n+CREG: 0,1\r\n\r\nOK\r\n");

    // After a restart the PIN is asked again; three wrong ones ask for the PUK.
    drop(m.power_on());
    say(&mut m, "ATE0;+CMEE=2\r");
    for _ in 0..3 {
        assert_eq!(
            say(&mut m, "AT+CPIN=\"9999\"\r"),
            "\r\n+CME ERROR: incorrect password\r\n"
        );
    }
    assert_eq!(
        say(&mut m, "AT+CPIN?\r"),
        "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CPIN=\"1234\"\r"),
        "\r\n+CME ERROR: SIM PUK required\r\n"
    );
    assert_eq!(say(&mut m, "AT+CPIN=\"87654321\",\"4321\"\r"), "\r\nOK\r\n");
    drop(m.power_on());
    say(&mut m, "ATE0\r");
    assert_eq!(say(&mut m, "AT+CPIN=\"4321\"\r"), "\r\nOK\r\n");
}

#[test]
fn puk_locked_from_the_start() {
    let mut m = Interpreter::new(profile(), Some("1234".into()), "87654321".into(), true);
    say(&mut m, "ATE0\r");
    assert_eq!(
        say(&mut m, "AT+CPIN?\r"),
        "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    );
}

#[test]
fn stored_sms_notified_read_listed_and_deleted() {
    let mut m = quiet();
    let pdu = deliver();
    let length = tpdu_length(&pdu).expect("length");
    assert_eq!(
        text(&m.incoming_sms(pdu.clone())),
        "\r\n+CMTI: \"SM\",1\r\n"
    );
    assert_eq!(
        text(&m.incoming_sms(pdu.clone())),
        "\r\n+CMTI: \"SM\",2\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",2,3,\"SM\",2,3,\"SM\",2,3\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CMGR=1\r"),
        format!("\r\n+CMGR: 0,,{length}\r\n{DELIVER}\r\n\r\nOK\r\n")
    );
    assert_eq!(
        say(&mut m, "AT+CMGL=4\r"),
        format!(
            "\r\n+CMGL: 1,1,,{length}\r\n{DELIVER}\r\n+CMGL: 2,0,,{length}\r\n{DELIVER}\r\n\r\nOK\r\n"
        )
    );
    assert_eq!(say(&mut m, "AT+CMGL=0\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGD=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGR=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGR=9\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(
        say(&mut m, "AT+CMGD=?\r"),
        "\r\n+CMGD: (2),(0-4)\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+CMGD=1,4\r"), "\r\nOK\r\n");
    assert_eq!(m.storage().sms.used(), 0);
}

#[test]
fn full_storage_keeps_sms_at_the_network() {
    let mut m = quiet();
    let pdu = deliver();
    for index in 1..=3 {
        assert_eq!(
            text(&m.incoming_sms(pdu.clone())),
            format!("\r\n+CMTI: \"SM\",{index}\r\n")
        );
    }
    // No room: no +CMTI, the network holds it.
    assert_eq!(text(&m.incoming_sms(pdu.clone())), "");
    assert_eq!(m.held_by_network(), 1);
    // Deleting makes room; the held SMS arrives.
    assert_eq!(
        say(&mut m, "AT+CMGD=2\r"),
        "\r\nOK\r\n\r\n+CMTI: \"SM\",2\r\n"
    );
    assert_eq!(m.held_by_network(), 0);

    // The switch: storage acts full whatever the count.
    say(&mut m, "AT+CMGD=1,4\r");
    assert_eq!(text(&m.set_storage_full(true)), "");
    assert_eq!(text(&m.incoming_sms(pdu.clone())), "");
    assert_eq!(
        say(&mut m, "AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",0,0,\"SM\",0,0,\"SM\",0,0\r\n\r\nOK\r\n"
    );
    assert_eq!(text(&m.set_storage_full(false)), "\r\n+CMTI: \"SM\",1\r\n");
}

#[test]
fn routed_sms_with_and_without_acknowledgement() {
    let mut p = profile();
    p.notify = NotifyMode::Cmt;
    let mut m = Interpreter::new(p, None, "1".into(), false);
    say(&mut m, "ATE0\r");
    // This modem lacks +CMTI.
    assert_eq!(
        say(&mut m, "AT+CNMI=2,1,0,0,0\r"),
        "\r\n+CMS ERROR: 303\r\n"
    );
    assert_eq!(say(&mut m, "AT+CNMI=2,2,0,0,0\r"), "\r\nOK\r\n");
    let pdu = deliver();
    let length = tpdu_length(&pdu).expect("length");
    let routed = format!("\r\n+CMT: ,{length}\r\n{DELIVER}\r\n");
    // Phase 2: no acknowledgement.
    assert_eq!(text(&m.incoming_sms(pdu.clone())), routed);
    assert_eq!(say(&mut m, "AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    // Phase 2+: one at a time, each acknowledged.
    say(&mut m, "AT+CSMS=1\r");
    let effects = m.incoming_sms(pdu.clone());
    assert_eq!(text(&effects), routed);
    assert!(effects.contains(&Effect::AwaitAck(1)));
    assert_eq!(text(&m.incoming_sms(pdu.clone())), "");
    assert_eq!(say(&mut m, "AT+CNMA\r"), format!("\r\nOK\r\n{routed}"));
    assert_eq!(say(&mut m, "AT+CNMA\r"), "\r\nOK\r\n");
    assert_eq!(m.storage().sms.used(), 0);
    // Not acknowledged in time: routing off, the SMS is stored instead.
    m.incoming_sms(pdu.clone());
    assert_eq!(text(&m.ack_timeout(3)), "");
    assert_eq!(
        say(&mut m, "AT+CNMI?\r"),
        "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n"
    );
    assert_eq!(m.storage().sms.used(), 1);
}

#[test]
fn status_reports_routed_or_stored() {
    let mut m = quiet();
    let report = vec![0x00, 0x06, 0x05, 0x00, 0x81, 0x00, 0x00];
    // ds=0: not routed.
    assert_eq!(text(&m.incoming_report(report.clone())), "");
    assert_eq!(say(&mut m, "AT+CNMI=2,1,0,1,0\r"), "\r\nOK\r\n");
    assert_eq!(
        text(&m.incoming_report(report.clone())),
        "\r\n+CDS: 6\r\n00060500810000\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CNMI=2,1,0,2,0\r"),
        "\r\n+CMS ERROR: 303\r\n"
    );

    let mut p = profile();
    p.reports = ReportMode::Cdsi;
    let mut m = Interpreter::new(p, None, "1".into(), false);
    say(&mut m, "ATE0;+CNMI=2,1,0,2,0\r");
    assert_eq!(
        text(&m.incoming_report(report.clone())),
        "\r\n+CDSI: \"SR\",1\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CPMS=\"SR\"\r"),
        "\r\n+CPMS: 1,3,0,3,0,3\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CMGR=1\r"),
        "\r\n+CMGR: 0,,6\r\n00060500810000\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut m, "AT+CMGD=1\r"), "\r\nOK\r\n");
    assert_eq!(m.storage().reports.used(), 0);
    assert_eq!(say(&mut m, "AT+CPMS=\"ME\"\r"), "\r\n+CMS ERROR: 302\r\n");
}

#[test]
fn prompt_escape_and_bad_lengths() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CMGS=23\r"), "\r\n> ");
    assert_eq!(say(&mut m, "0011\x1b"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CMGS=5\r"), "\r\n+CMS ERROR: 304\r\n");
    assert_eq!(say(&mut m, "AT+CMGS=22\r"), "\r\n> ");
    // Length does not match the PDU.
    assert_eq!(
        say(&mut m, &format!("{SUBMIT}\x1a")),
        "\r\n+CMS ERROR: 304\r\n"
    );
    assert_eq!(say(&mut m, "AT+CMGS=23\r"), "\r\n> ");
    assert_eq!(say(&mut m, "00ZZ\x1a"), "\r\n+CMS ERROR: 304\r\n");
}

#[test]
fn echo_covers_the_pdu() {
    let mut m = modem();
    assert_eq!(say(&mut m, "AT+CMGS=23\r"), "AT+CMGS=23\r\r\n> ");
    assert_eq!(say(&mut m, "00\x1b"), "00\r\nOK\r\n");
}

#[test]
fn write_stores_a_pdu() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CMGW=23\r"), "\r\n> ");
    assert_eq!(
        say(&mut m, &format!("{SUBMIT}\x1a")),
        "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    );
    assert_eq!(m.storage().sms.entries()[0].status, Status::StoredUnsent);
    m.set_storage_full(true);
    say(&mut m, "AT+CMGW=23\r");
    assert_eq!(
        say(&mut m, &format!("{SUBMIT}\x1a")),
        "\r\n+CMS ERROR: 322\r\n"
    );
}

/// Sends `pdu` with AT+CMGS and returns the effects of the Ctrl-Z.
fn submit(m: &mut Interpreter, pdu: &str) -> Vec<Effect> {
    let length = tpdu_length(&pdu::hex_to_bytes(pdu).expect("hex")).expect("length");
    assert_eq!(say(m, &format!("AT+CMGS={length}\r")), "\r\n> ");
    m.receive(format!("{pdu}\x1a").as_bytes())
}

fn submission(effects: &[Effect]) -> &Submission {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Submitted(s) => Some(s),
            _ => None,
        })
        .expect("a submission")
}

#[test]
fn send_gets_incrementing_message_references() {
    let mut m = quiet();
    for expected in 0..3u8 {
        let effects = submit(&mut m, SUBMIT);
        let s = submission(&effects);
        assert_eq!(s.result, Ok(expected));
        let submit = s.submit.as_ref().expect("decoded");
        assert_eq!(submit.recipient.value, "+46708251358");
        assert!(!submit.status_report_request);
        // Input meanwhile waits for the network's answer.
        assert_eq!(say(&mut m, "AT\r"), "");
        assert_eq!(
            text(&m.finish_submit()),
            format!("\r\n+CMGS: {expected}\r\n\r\nOK\r\n\r\nOK\r\n")
        );
    }
    let effects = submit(&mut m, SUBMIT_SRR);
    let decoded = submission(&effects).submit.as_ref().expect("decoded");
    assert!(decoded.status_report_request);
}

#[test]
fn send_errors_injected_or_from_no_service() {
    let mut m = quiet();
    m.push_cms_error(38);
    submit(&mut m, SUBMIT);
    assert_eq!(text(&m.finish_submit()), "\r\n+CMS ERROR: 38\r\n");
    submit(&mut m, SUBMIT);
    // One-shot: the next one goes, with the first TP-MR (a refused part uses none).
    assert_eq!(text(&m.finish_submit()), "\r\n+CMGS: 0\r\n\r\nOK\r\n");
    m.set_cms_error_always(Some(500));
    for _ in 0..2 {
        submit(&mut m, SUBMIT);
        assert_eq!(text(&m.finish_submit()), "\r\n+CMS ERROR: 500\r\n");
    }
    m.clear_cms_errors();
    m.set_network(false);
    say(&mut m, "AT+CMEE=2\r");
    submit(&mut m, SUBMIT);
    assert_eq!(
        text(&m.finish_submit()),
        "\r\n+CMS ERROR: no network service\r\n"
    );
}

#[test]
fn submit_answer_is_marked() {
    let mut m = quiet();
    submit(&mut m, SUBMIT);
    say(&mut m, "AT\r");
    let effects = m.finish_submit();
    assert_eq!(
        effects,
        vec![
            Effect::Output(b"\r\n+CMGS: 0\r\n\r\nOK\r\n".to_vec()),
            Effect::SubmitAnswered,
            Effect::Output(b"\r\nOK\r\n".to_vec()),
        ]
    );
}

#[test]
fn restart_command() {
    let mut m = quiet();
    let effects = m.receive(b"AT+CFUN=1,1\r");
    assert_eq!(text(&effects), "\r\nOK\r\n");
    assert!(effects.contains(&Effect::Restart));
}

#[test]
fn unplugged_modem_receives_nothing() {
    let mut m = quiet();
    m.power_off();
    let pdu = deliver();
    assert_eq!(text(&m.incoming_sms(pdu)), "");
    assert_eq!(m.held_by_network(), 1);
    // Power-on brings CNMI back to 2,1: the held SMS is stored and announced.
    assert_eq!(text(&m.power_on()), "\r\n+CMTI: \"SM\",1\r\n");
}

#[test]
fn hex_helpers() {
    assert_eq!(hex(&[0x00, 0xAB, 0x1f]), "00AB1F");
    assert_eq!(tpdu_length(&[0x00, 1, 2, 3]), Some(3));
    assert_eq!(tpdu_length(&[0x07, 1, 2]), None);
    assert_eq!(tpdu_length(&[]), None);
}

/// A status report for TP-MR 5 (SMSC field empty), as `network::status_report` builds them.
fn report_pdu() -> Vec<u8> {
    vec![0x00, 0x06, 0x05, 0x00, 0x81, 0x00, 0x00]
}

const ROUTED_REPORT: &str = "\r\n+CDS: 6\r\n00060500810000\r\n";

#[test]
fn refused_and_unacknowledged_reports_are_delivered_again_by_the_network() {
    let mut m = quiet();
    say(&mut m, "AT+CSMS=1;+CNMI=2,1,0,1,0\r");
    // Refused with AT+CNMA=2 (RP-ERROR): the network keeps it and tries again later.
    let effects = m.incoming_report(report_pdu());
    assert_eq!(text(&effects), ROUTED_REPORT);
    assert!(effects.contains(&Effect::AwaitAck(1)));
    let effects = m.receive(b"AT+CNMA=2\r");
    assert_eq!(text(&effects), "\r\nOK\r\n");
    assert!(effects.contains(&Effect::RetryLater), "{effects:?}");
    assert_eq!(m.held_for_retry(), 1);
    let effects = m.retry_held();
    assert_eq!(text(&effects), ROUTED_REPORT);
    assert_eq!(say(&mut m, "AT+CNMA\r"), "\r\nOK\r\n");
    assert_eq!(m.held_for_retry(), 0);

    // Never acknowledged: routing goes off (TS 27.005 §3.4.4) and the network retries; a
    // retry that finds routing still off is taken by the modem and dropped (ds=0).
    let effects = m.incoming_report(report_pdu());
    let Some(Effect::AwaitAck(number)) = effects.iter().find(|e| matches!(e, Effect::AwaitAck(_)))
    else {
        panic!("no acknowledgement awaited: {effects:?}");
    };
    let effects = m.ack_timeout(*number);
    assert!(effects.contains(&Effect::RetryLater), "{effects:?}");
    assert_eq!(
        say(&mut m, "AT+CNMI?\r"),
        "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n"
    );
    say(&mut m, "AT+CNMI=2,1,0,1,0\r");
    assert_eq!(text(&m.retry_held()), ROUTED_REPORT);
    assert_eq!(say(&mut m, "AT+CNMA\r"), "\r\nOK\r\n");
    let effects = m.incoming_report(report_pdu());
    let Some(Effect::AwaitAck(number)) = effects.iter().find(|e| matches!(e, Effect::AwaitAck(_)))
    else {
        panic!("no acknowledgement awaited: {effects:?}");
    };
    m.ack_timeout(*number);
    assert_eq!(text(&m.retry_held()), "");
    assert_eq!(m.held_for_retry(), 0, "taken and dropped with ds=0");
    // AT+CNMA=3 is no such acknowledgement.
    assert_eq!(say(&mut m, "AT+CNMA=3\r"), "\r\n+CMS ERROR: 304\r\n");
}

#[test]
fn reports_wait_at_the_network_while_the_modem_is_away_or_sr_is_full() {
    let mut m = quiet();
    say(&mut m, "AT+CSMS=1;+CNMI=2,1,0,1,0\r");
    // Routed and awaiting its acknowledgement when the modem is unplugged.
    assert_eq!(text(&m.incoming_report(report_pdu())), ROUTED_REPORT);
    let effects = m.power_off();
    assert!(effects.contains(&Effect::RetryLater), "{effects:?}");
    // Arriving while the modem is away.
    assert_eq!(text(&m.incoming_report(report_pdu())), "");
    assert_eq!(m.held_for_retry(), 2);
    // Still away at the retry: kept again.
    let effects = m.retry_held();
    assert!(effects.contains(&Effect::RetryLater), "{effects:?}");
    assert_eq!(m.held_for_retry(), 2);
    m.power_on();
    say(&mut m, "ATE0;+CSMS=1;+CNMI=2,1,0,1,0\r");
    assert_eq!(text(&m.retry_held()), ROUTED_REPORT);
    assert_eq!(
        say(&mut m, "AT+CNMA\r"),
        format!("\r\nOK\r\n{ROUTED_REPORT}")
    );
    assert_eq!(say(&mut m, "AT+CNMA\r"), "\r\nOK\r\n");

    // Stored reports: a full "SR" makes the network keep the next one.
    let mut p = profile();
    p.reports = ReportMode::Cdsi;
    let mut m = Interpreter::new(p, None, "1".into(), false);
    say(&mut m, "ATE0;+CNMI=2,1,0,2,0\r");
    for index in 1..=3 {
        assert_eq!(
            text(&m.incoming_report(report_pdu())),
            format!("\r\n+CDSI: \"SR\",{index}\r\n")
        );
    }
    let effects = m.incoming_report(report_pdu());
    assert_eq!(text(&effects), "");
    assert!(effects.contains(&Effect::RetryLater));
    say(&mut m, "AT+CPMS=\"SR\";+CMGD=2\r");
    assert_eq!(text(&m.retry_held()), "\r\n+CDSI: \"SR\",2\r\n");
}

#[test]
fn after_power_on_nothing_arrives_until_the_modem_has_registered() {
    let mut m = quiet();
    m.set_attach_delayed(true);
    say(&mut m, "AT+CNMI=2,1,0,1,0\r");
    m.power_off();
    assert_eq!(text(&m.incoming_report(report_pdu())), "");
    let effects = m.power_on();
    assert!(effects.contains(&Effect::Attaching), "{effects:?}");
    say(&mut m, "ATE0;+CREG=1;+CSMS=1;+CNMI=2,1,0,1,0\r");
    assert_eq!(
        say(&mut m, "AT+CREG?\r"),
        "\r\n+CREG: 1,2\r\n\r\nOK\r\n",
        "searching"
    );
    assert_eq!(say(&mut m, "AT+CMGS=23\r"), "\r\n> ");
    assert_eq!(say(&mut m, &format!("{SUBMIT}\x1a")), "");
    assert_eq!(text(&m.finish_submit()), "\r\n+CMS ERROR: 331\r\n");
    // Registered: the held report comes at once, after the registration URC.
    assert_eq!(
        text(&m.attached()),
        format!("\r\n+CREG: 1\r\n{ROUTED_REPORT}")
    );
}

#[test]
fn framing_quirks_shape_stored_and_routed_pdus() {
    let mut m = quiet();
    let pdu = deliver();
    let length = tpdu_length(&pdu).expect("length");
    m.incoming_sms(pdu.clone());
    m.set_quirks(Quirks {
        trailing_quote: true,
        ..Quirks::default()
    });
    assert_eq!(
        say(&mut m, "AT+CMGR=1\r"),
        format!("\r\n+CMGR: 0,,{length}\r\n{DELIVER}\"\r\r\n\r\nOK\r\n")
    );
    m.set_quirks(Quirks {
        space_separator: true,
        ..Quirks::default()
    });
    assert_eq!(
        say(&mut m, "AT+CMGL=4\r"),
        format!("\r\n+CMGL: 1,1,,{length} {DELIVER}\r\n\r\nOK\r\n")
    );
    m.set_quirks(Quirks {
        ff_padding: true,
        ..Quirks::default()
    });
    let padded = say(&mut m, "AT+CMGR=1\r");
    assert!(padded.contains(&format!("{DELIVER}FFFF")), "{padded:?}");
    // Routed: the same framing on the +CMT line.
    let mut p = profile();
    p.notify = NotifyMode::Cmt;
    let mut routed = Interpreter::new(p, None, "1".into(), false);
    say(&mut routed, "ATE0\r");
    say(&mut routed, "AT+CNMI=2,2,0,0,0\r");
    routed.set_quirks(Quirks {
        trailing_quote: true,
        space_separator: true,
        ..Quirks::default()
    });
    assert_eq!(
        text(&routed.incoming_sms(pdu)),
        format!("\r\n+CMT: ,{length} {DELIVER}\"\r\r\n")
    );
}

#[test]
fn cpin_without_its_final_ok() {
    let mut m = quiet();
    m.set_quirks(Quirks {
        no_ok_after_cpin: true,
        ..Quirks::default()
    });
    assert_eq!(say(&mut m, "AT+CPIN?\r"), "\r\n+CPIN: READY\r\n");
    // Only that answer: everything else still ends with its result.
    assert_eq!(say(&mut m, "AT\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CSQ\r"), "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
}

/// The USSD request number a command line asked the caller to answer later.
fn ussd_requested(effects: &[Effect]) -> Option<u64> {
    effects.iter().find_map(|e| match e {
        Effect::UssdRequested(n) => Some(*n),
        _ => None,
    })
}

fn ussd_modem() -> Interpreter {
    let mut m = quiet();
    say(&mut m, "AT+CMEE=1\r");
    m.set_ussd_answer("*100#", Some("Your balance is 12.50 USD".into()));
    m
}

#[test]
fn ussd_answers_after_ok_as_a_urc() {
    let mut m = ussd_modem();
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    assert_eq!(text(&effects), "\r\nOK\r\n");
    let number = ussd_requested(&effects).expect("the network is asked");
    assert_eq!(
        text(&m.ussd_answer(number)),
        "\r\n+CUSD: 0,\"Your balance is 12.50 USD\",15\r\n"
    );
    // Answered once: a second call for the same request prints nothing.
    assert_eq!(text(&m.ussd_answer(number)), "");
    assert_eq!(m.ussd_requests(), ["*100#"]);
    assert_eq!(say(&mut m, "AT+CUSD?\r"), "\r\n+CUSD: 1\r\n\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CUSD=?\r"), "\r\n+CUSD: (0-2)\r\n\r\nOK\r\n");
}

#[test]
fn ussd_encodings_of_real_modems() {
    let balance = "Your balance is 12.50 USD";
    let mut m = ussd_modem();
    // Huawei: packed septets in hex, and it takes the request packed too.
    m.set_ussd_encoding(UssdEncoding::Gsm7Hex);
    let effects = m.receive(b"AT+CUSD=1,\"AA180C3602\",15\r");
    let line = text(&m.ussd_answer(ussd_requested(&effects).expect("asked")));
    let hex = crate::pdu::ussd::packed_hex(balance).expect("GSM");
    assert_eq!(line, format!("\r\n+CUSD: 0,\"{hex}\",15\r\n"));
    assert_eq!(m.ussd_requests(), ["*100#"]);
    // UCS-2 hex with dcs 72.
    m.set_ussd_encoding(UssdEncoding::Ucs2Hex);
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    let line = text(&m.ussd_answer(ussd_requested(&effects).expect("asked")));
    let ucs2 = crate::pdu::ussd::ucs2_hex(balance);
    assert_eq!(line, format!("\r\n+CUSD: 0,\"{ucs2}\",72\r\n"));
    // Plain text follows AT+CSCS: UCS-2 hex under "UCS2", with the GSM dcs.
    m.set_ussd_encoding(UssdEncoding::Text);
    say(&mut m, "AT+CSCS=\"UCS2\"\r");
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    let line = text(&m.ussd_answer(ussd_requested(&effects).expect("asked")));
    assert_eq!(line, format!("\r\n+CUSD: 0,\"{ucs2}\",15\r\n"));
    // Text GSM 7-bit cannot carry is UCS-2 whatever the switch.
    say(&mut m, "AT+CSCS=\"GSM\"\r");
    m.set_ussd_answer("*101#", Some("余额 5".into()));
    let effects = m.receive(b"AT+CUSD=1,\"*101#\",15\r");
    let line = text(&m.ussd_answer(ussd_requested(&effects).expect("asked")));
    assert_eq!(
        line,
        format!(
            "\r\n+CUSD: 0,\"{}\",72\r\n",
            crate::pdu::ussd::ucs2_hex("余额 5")
        )
    );
}

#[test]
fn unknown_codes_cancel_and_refusals() {
    let mut m = ussd_modem();
    // Unknown: OK, then "operation not supported".
    let effects = m.receive(b"AT+CUSD=1,\"*999#\",15\r");
    assert_eq!(text(&effects), "\r\nOK\r\n");
    assert_eq!(
        text(&m.ussd_answer(ussd_requested(&effects).expect("asked"))),
        "\r\n+CUSD: 4\r\n"
    );
    // The quirk: refused at once.
    m.set_quirks(Quirks::default().with(super::super::Quirk::UssdCmeError, true));
    let effects = m.receive(b"AT+CUSD=1,\"*999#\",15\r");
    assert_eq!(text(&effects), "\r\n+CME ERROR: 100\r\n");
    assert_eq!(ussd_requested(&effects), None);
    m.set_quirks(Quirks::default());
    // AT+CUSD=2 cancels: the answer never comes.
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    let number = ussd_requested(&effects).expect("asked");
    assert_eq!(say(&mut m, "AT+CUSD=2\r"), "\r\nOK\r\n");
    assert_eq!(text(&m.ussd_answer(number)), "");
    // One session at a time; a code that is not one; a bad dcs; presentation off.
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    let number = ussd_requested(&effects).expect("asked");
    assert_eq!(
        say(&mut m, "AT+CUSD=1,\"*100#\",15\r"),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(text(&m.ussd_answer(number)).matches("+CUSD: 0").count(), 1);
    assert_eq!(
        say(&mut m, "AT+CUSD=1,\"hello\",15\r"),
        "\r\n+CME ERROR: 4\r\n"
    );
    assert_eq!(
        say(&mut m, "AT+CUSD=1,\"*100#\",x\r"),
        "\r\n+CME ERROR: 4\r\n"
    );
    assert_eq!(say(&mut m, "AT+CUSD=7\r"), "\r\n+CME ERROR: 4\r\n");
    let effects = m.receive(b"AT+CUSD=0,\"*100#\",15\r");
    assert_eq!(
        text(&m.ussd_answer(ussd_requested(&effects).expect("asked"))),
        ""
    );
    // Without a network: "no network service".
    drop(m.set_network(false));
    assert_eq!(
        say(&mut m, "AT+CUSD=1,\"*100#\",15\r"),
        "\r\n+CME ERROR: 30\r\n"
    );
}

#[test]
fn a_restart_forgets_the_request_in_flight() {
    let mut m = ussd_modem();
    let effects = m.receive(b"AT+CUSD=1,\"*100#\",15\r");
    let number = ussd_requested(&effects).expect("asked");
    drop(m.power_on());
    assert_eq!(text(&m.ussd_answer(number)), "");
    assert_eq!(
        say(&mut m, "AT+CUSD?\r"),
        "AT+CUSD?\r\r\n+CUSD: 0\r\n\r\nOK\r\n"
    );
}

/// The ring the caller must schedule next, if any.
fn next_ring(effects: &[Effect]) -> Option<u64> {
    effects.iter().find_map(|e| match e {
        Effect::Ring(n) => Some(*n),
        _ => None,
    })
}

#[test]
fn a_call_rings_with_clip_until_the_caller_gives_up() {
    let mut m = quiet();
    assert_eq!(say(&mut m, "AT+CLIP=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut m, "AT+CLIP?\r"), "\r\n+CLIP: 1,1\r\n\r\nOK\r\n");
    let effects = m
        .incoming_call(Some("+60123456789".into()), 2)
        .expect("the call reaches the modem");
    assert_eq!(
        text(&effects),
        "\r\nRING\r\n\r\n+CLIP: \"+60123456789\",145,,,,0\r\n"
    );
    // A second call cannot ring at the same time.
    assert!(m.incoming_call(Some("+60111111111".into()), 1).is_none());
    let effects = m.ring(next_ring(&effects).expect("rings again"));
    assert_eq!(
        text(&effects),
        "\r\nRING\r\n\r\n+CLIP: \"+60123456789\",145,,,,0\r\n"
    );
    let effects = m.ring(next_ring(&effects).expect("rings again"));
    assert_eq!(text(&effects), "\r\nNO CARRIER\r\n");
    assert_eq!(next_ring(&effects), None);
    assert_eq!(
        m.calls(),
        [CallRecord {
            number: Some("+60123456789".into()),
            rings: 2,
            end: Some(CallEnd::GaveUp)
        }]
    );
}

#[test]
fn without_clip_only_ring_and_a_withheld_number() {
    let mut m = quiet();
    let effects = m.incoming_call(None, 3).expect("rings");
    assert_eq!(text(&effects), "\r\nRING\r\n");
    say(&mut m, "AT+CLIP=1\r");
    let effects = m.ring(next_ring(&effects).expect("again"));
    assert_eq!(text(&effects), "\r\nRING\r\n\r\n+CLIP: \"\",128,,,,1\r\n");
    // A national number has type 129.
    say(&mut m, "ATH\r");
    let effects = m
        .incoming_call(Some("0123456789".into()), 1)
        .expect("rings");
    assert!(text(&effects).contains("+CLIP: \"0123456789\",129,,,,0"));
}

#[test]
fn chup_and_ath_hang_up_and_the_quirk_refuses_chup() {
    let mut m = quiet();
    let effects = m
        .incoming_call(Some("+60123456789".into()), 5)
        .expect("rings");
    let pending = next_ring(&effects).expect("again");
    assert_eq!(say(&mut m, "AT+CHUP\r"), "\r\nOK\r\n");
    assert_eq!(text(&m.ring(pending)), "", "no more rings once hung up");
    assert_eq!(m.calls()[0].end, Some(CallEnd::HungUp("AT+CHUP")));
    // Some modems lack AT+CHUP: ERROR, the call goes on, ATH ends it.
    m.set_quirks(Quirks::default().with(super::super::Quirk::NoChup, true));
    let effects = m
        .incoming_call(Some("+60123456789".into()), 5)
        .expect("rings");
    assert_eq!(say(&mut m, "AT+CHUP\r"), "\r\nERROR\r\n");
    let effects = m.ring(next_ring(&effects).expect("still ringing"));
    assert!(text(&effects).contains("RING"));
    assert_eq!(say(&mut m, "ATH\r"), "\r\nOK\r\n");
    assert_eq!(m.calls()[1].end, Some(CallEnd::HungUp("ATH")));
    assert_eq!(m.calls()[1].rings, 2);
    // No call: both still answer OK (ATH) / ERROR (the quirk).
    assert_eq!(say(&mut m, "ATH\r"), "\r\nOK\r\n");
    // A modem off the network gets no call; one that restarts loses it.
    m.set_quirks(Quirks::default());
    let _ = m
        .incoming_call(Some("+60123456789".into()), 5)
        .expect("rings");
    drop(m.power_on());
    assert_eq!(m.calls()[2].end, Some(CallEnd::Lost));
    drop(m.set_network(false));
    assert!(m.incoming_call(Some("+60123456789".into()), 1).is_none());
}
