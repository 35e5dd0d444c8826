//! The SMS driver against the simulated modem on a real pty: initialisation, sending,
//! receiving, status reports, errors, and recovery from a hang and an unplug; and
//! `smsgate doctor` against a healthy and a broken modem.

use std::path::PathBuf;
use std::time::Duration;

use smsgate::at::AtConfig;
use smsgate::cmd::doctor;
use smsgate::modem::{
    self, Health, ModemEvent, ModemHandle, ModemOptions, ModemState, SendErrorKind, StorageSlot,
    Tuning,
};
use smsgate::pdu::{self, Address, SubmitOptions};
use smsgate::sim::{self, NotifyMode, Quirk, Quirks, ReportMode, SimHandle, SimOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
const RECIPIENT: &str = "+60123456789";

struct Rig {
    sim: SimHandle,
    modem: ModemHandle,
    events: mpsc::Receiver<ModemEvent>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn options(port: PathBuf) -> ModemOptions {
    ModemOptions {
        port,
        endpoint: None,
        baud: 115_200,
        pin: None,
        delivery_reports: true,
        sweep_interval: Duration::from_secs(60),
        command_timeout: Duration::from_millis(1500),
        send_timeout: Duration::from_secs(3),
        reset_on_failure: false,
        balance: None,
        hangup_calls: false,
    }
}

/// Short recovery timings so a hang or an unplug is over in seconds.
fn tuning() -> Tuning {
    Tuning {
        at: AtConfig {
            resync_timeout: Duration::from_millis(300),
            resync_attempts: 2,
            settle: Duration::from_millis(30),
            ..AtConfig::default()
        },
        reopen_after_timeouts: 2,
        retry_backoff: (Duration::from_millis(100), Duration::from_millis(400)),
        device_poll: Duration::from_millis(50),
        busy_backoff: Duration::from_millis(50),
        health_interval: Duration::from_millis(300),
        ..Tuning::default()
    }
}

async fn sim_with(mut sim_options: SimOptions) -> (SimHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    sim_options.link = Some(dir.path().join("ttyMODEM"));
    let sim = sim::spawn(sim_options).await.expect("simulator starts");
    (sim, dir)
}

async fn rig_with(sim_options: SimOptions, adjust: impl FnOnce(&mut ModemOptions)) -> Rig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (sim, dir) = sim_with(sim_options).await;
    let mut modem_options = options(sim.path());
    adjust(&mut modem_options);
    let shutdown = CancellationToken::new();
    let (modem, events) = modem::spawn_with(modem_options, tuning(), shutdown.clone());
    Rig {
        sim,
        modem,
        events,
        shutdown,
        _dir: dir,
    }
}

async fn ready_rig(sim_options: SimOptions) -> Rig {
    let rig = rig_with(sim_options, |_| {}).await;
    wait_health(&rig.modem, "ready", |h| h.state == ModemState::Ready).await;
    rig
}

async fn wait_health(modem: &ModemHandle, what: &str, check: impl Fn(&Health) -> bool) -> Health {
    let mut watch = modem.health_watch();
    let result = tokio::time::timeout(DEADLINE, async {
        loop {
            let health = watch.borrow_and_update().clone();
            if check(&health) {
                return health;
            }
            if watch.changed().await.is_err() {
                return watch.borrow().clone();
            }
        }
    })
    .await;
    match result {
        Ok(health) if check(&health) => health,
        _ => panic!("modem not {what} in time: {:?}", modem.health()),
    }
}

async fn next_event(events: &mut mpsc::Receiver<ModemEvent>) -> ModemEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event in time")
        .expect("the event channel is open")
}

async fn received(events: &mut mpsc::Receiver<ModemEvent>) -> (pdu::Deliver, StorageSlot) {
    loop {
        if let ModemEvent::Received { deliver, slot, .. } = next_event(events).await {
            return (deliver, slot);
        }
    }
}

fn parts(text: &str, status_report: bool) -> Vec<pdu::EncodedPart> {
    let recipient = Address::parse(RECIPIENT).expect("recipient parses");
    let options = SubmitOptions {
        status_report,
        concat_reference: 42,
        ..SubmitOptions::default()
    };
    pdu::encode_submit(&recipient, text, &options).expect("text encodes")
}

async fn send_message(modem: &ModemHandle, text: &str, status_report: bool) -> Vec<u8> {
    let parts = parts(text, status_report);
    let mut references = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let more = i + 1 < parts.len();
        references.push(modem.send_part(part, more).await.expect("part accepted"));
    }
    references
}

#[tokio::test]
async fn initialises_and_reports_health() {
    let rig = ready_rig(SimOptions::default()).await;
    let health = rig.modem.health();
    assert!(health.healthy);
    assert!(health.registered, "{health:?}");
    assert_eq!(health.sim, "READY");
    assert_eq!(health.signal_dbm, Some(-73));
    assert!(health.model.is_some(), "{health:?}");
    assert_eq!(health.operator.as_deref(), Some("smsgate sim"));
}

#[tokio::test]
async fn enters_the_configured_pin() {
    let sim_options = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let rig = rig_with(sim_options, |o| o.pin = Some("2468".into())).await;
    wait_health(&rig.modem, "ready", |h| h.state == ModemState::Ready).await;
    send_message(&rig.modem, "after the PIN", false).await;
}

#[tokio::test]
async fn a_missing_pin_is_reported_not_guessed() {
    let sim_options = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let rig = rig_with(sim_options, |_| {}).await;
    let health = wait_health(&rig.modem, "asking for the PIN", |h| {
        h.last_error
            .as_deref()
            .is_some_and(|e| e.contains("modem.pin"))
    })
    .await;
    assert_ne!(health.state, ModemState::Ready);
    let error = rig
        .modem
        .send_part(&parts("x", false)[0], false)
        .await
        .expect_err("not ready");
    assert_eq!(error.kind, SendErrorKind::Temporary);
}

#[tokio::test]
async fn sends_one_part_and_five_parts() {
    let rig = ready_rig(SimOptions::default()).await;
    let single = send_message(&rig.modem, "Hello from smsgate", false).await;
    assert_eq!(single.len(), 1);
    let long = "Five parts of GSM text. ".repeat(30);
    let references = send_message(&rig.modem, &long, false).await;
    assert_eq!(references.len(), 5);
    let submitted = rig.sim.submitted().await;
    assert_eq!(submitted.len(), 6);
    assert_eq!(submitted[0].submit.recipient.value, RECIPIENT);
    assert_eq!(submitted[0].mr, single[0]);
    let sequences: Vec<u8> = submitted[1..]
        .iter()
        .map(|s| s.submit.user_data.concat.as_ref().expect("concat").sequence)
        .collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
    let mrs: Vec<u8> = submitted[1..].iter().map(|s| s.mr).collect();
    assert_eq!(mrs, references);
}

#[tokio::test]
async fn receives_a_part_and_deletes_it_only_when_confirmed() {
    let mut rig = ready_rig(SimOptions::default()).await;
    rig.sim
        .inject_sms("+60111222333", "hello gateway")
        .await
        .expect("inject");
    let (deliver, slot) = received(&mut rig.events).await;
    assert_eq!(deliver.sender.value, "+60111222333");
    assert_eq!(deliver.user_data.text, "hello gateway");
    assert!(matches!(slot, StorageSlot::Stored { .. }), "{slot:?}");
    assert_eq!(rig.sim.stored_count().await, 1, "kept until confirmed");
    rig.modem.confirm(slot).await.expect("deleted");
    assert_eq!(rig.sim.stored_count().await, 0);
}

#[tokio::test]
async fn receives_parts_out_of_order() {
    let mut rig = ready_rig(SimOptions::default()).await;
    let smsc = Address::parse("+60120000015").expect("smsc");
    let sender = Address::parse("+60111222333").expect("sender");
    let text = "A long message that takes three parts. ".repeat(9);
    let timestamp =
        chrono::DateTime::parse_from_rfc3339("2026-11-25T20:00:00+08:00").expect("timestamp");
    let pdus = pdu::encode_deliver(&smsc, &sender, &text, timestamp, 77).expect("encodes");
    assert_eq!(pdus.len(), 3);
    for pdu in pdus.iter().rev() {
        let hex: String = pdu.iter().map(|b| format!("{b:02X}")).collect();
        rig.sim.inject_pdu(&hex).await.expect("inject");
    }
    let mut sequences = Vec::new();
    for _ in 0..3 {
        let (deliver, slot) = received(&mut rig.events).await;
        let concat = deliver.user_data.concat.expect("concatenated");
        assert_eq!((concat.reference, concat.total), (77, 3));
        sequences.push(concat.sequence);
        rig.modem.confirm(slot).await.expect("deleted");
    }
    assert_eq!(sequences, vec![3, 2, 1]);
    assert_eq!(rig.sim.stored_count().await, 0);
}

#[tokio::test]
async fn the_start_up_sweep_finds_messages_whose_notice_was_lost() {
    let (sim, dir) = sim_with(SimOptions::default()).await;
    // Nobody listens yet: the `+CMTI` goes nowhere, the SMS stays stored.
    sim.inject_sms("+60111222333", "sent while down")
        .await
        .expect("inject");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while sim.stored_count().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shutdown = CancellationToken::new();
    let (modem, mut events) = modem::spawn_with(options(sim.path()), tuning(), shutdown.clone());
    let (deliver, slot) = received(&mut events).await;
    assert_eq!(deliver.user_data.text, "sent while down");
    modem.confirm(slot).await.expect("deleted");
    assert_eq!(sim.stored_count().await, 0);
    shutdown.cancel();
    drop(dir);
}

#[tokio::test]
async fn receives_routed_messages() {
    let sim_options = SimOptions {
        notify: NotifyMode::Cmt,
        ..SimOptions::default()
    };
    let mut rig = ready_rig(sim_options).await;
    rig.sim
        .inject_sms("+60111222333", "routed")
        .await
        .expect("inject");
    let (deliver, slot) = received(&mut rig.events).await;
    assert_eq!(deliver.user_data.text, "routed");
    rig.modem.confirm(slot).await.expect("acknowledged");
}

async fn report_for(rig: &mut Rig) -> (pdu::StatusReport, StorageSlot) {
    loop {
        if let ModemEvent::StatusReport { report, slot } = next_event(&mut rig.events).await {
            return (report, slot);
        }
    }
}

#[tokio::test]
async fn status_reports_routed() {
    let mut rig = ready_rig(SimOptions::default()).await;
    let references = send_message(&rig.modem, "report me", true).await;
    let (report, slot) = report_for(&mut rig).await;
    assert_eq!(report.message_reference, references[0]);
    assert_eq!(report.status, 0);
    rig.modem.confirm(slot).await.expect("confirmed");
}

#[tokio::test]
async fn status_reports_stored() {
    let sim_options = SimOptions {
        reports: ReportMode::Cdsi,
        report_status: 0x40,
        ..SimOptions::default()
    };
    let mut rig = ready_rig(sim_options).await;
    let references = send_message(&rig.modem, "report me", true).await;
    let (report, slot) = report_for(&mut rig).await;
    assert_eq!(report.message_reference, references[0]);
    assert_eq!(report.status, 0x40);
    assert!(
        matches!(&slot, StorageSlot::Stored { memory, .. } if memory == "SR"),
        "{slot:?}"
    );
    assert_eq!(rig.sim.stored_reports().await.len(), 1);
    rig.modem.confirm(slot).await.expect("deleted");
    assert!(rig.sim.stored_reports().await.is_empty());
}

#[tokio::test]
async fn send_errors_come_back_classified() {
    let rig = ready_rig(SimOptions::default()).await;
    let part = &parts("classify me", false)[0];
    for (code, kind) in [
        (38, SendErrorKind::Temporary),
        (42, SendErrorKind::Temporary),
        (1, SendErrorKind::Permanent),
        (10, SendErrorKind::Permanent),
    ] {
        rig.sim.set_cms_error(Some(code)).await;
        let error = rig.modem.send_part(part, false).await.expect_err("refused");
        assert_eq!((error.kind, error.code), (kind, Some(code)), "{error}");
        assert!(
            error.message.starts_with(&format!("+CMS ERROR {code}: ")),
            "{error}"
        );
    }
    // No answer within the send timeout: the part may or may not have gone.
    rig.sim.set_network_delay(Duration::from_secs(5)).await;
    let error = rig.modem.send_part(part, false).await.expect_err("timeout");
    assert_eq!(error.kind, SendErrorKind::Unknown, "{error}");
    rig.sim.set_network_delay(Duration::ZERO).await;
    wait_health(&rig.modem, "back", |h| h.state == ModemState::Ready).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while rig.modem.send_part(part, false).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_hang_is_survived() {
    let rig = ready_rig(SimOptions::default()).await;
    rig.sim.set_hang(true).await;
    let part = &parts("through a hang", false)[0];
    let error = rig.modem.send_part(part, false).await.expect_err("hung");
    assert_ne!(error.kind, SendErrorKind::Permanent, "{error}");
    rig.sim.set_hang(false).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match rig.modem.send_part(part, false).await {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never recovered: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let health = rig.modem.health();
    assert!(health.timeouts >= 1, "{health:?}");
    assert!(health.resyncs + health.reopens >= 1, "{health:?}");
}

#[tokio::test]
async fn an_unplug_reopens_the_new_pty_and_carries_on() {
    let mut rig = ready_rig(SimOptions::default()).await;
    rig.sim.unplug(Duration::from_millis(500)).await;
    wait_health(&rig.modem, "reopened", |h| {
        h.reopens >= 1 && h.state == ModemState::Ready
    })
    .await;
    send_message(&rig.modem, "after the unplug", false).await;
    rig.sim
        .inject_sms("+60111222333", "still listening")
        .await
        .expect("inject");
    let (deliver, _) = received(&mut rig.events).await;
    assert_eq!(deliver.user_data.text, "still listening");
}

#[tokio::test]
async fn doctor_passes_a_healthy_modem() {
    let (sim, _dir) = sim_with(SimOptions::default()).await;
    let diagnosis = doctor::diagnose(&options(sim.path())).await;
    let text = diagnosis.render();
    assert!(diagnosis.can_send_and_receive(), "{text}");
    assert!(text.contains("-73 dBm (excellent)"), "{text}");
    assert!(text.contains("+60120000015"), "{text}");
    assert!(
        text.contains("OK: this modem can send and receive SMS."),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_names_the_fix_for_a_broken_modem() {
    let (sim, _dir) = sim_with(SimOptions {
        registered: false,
        ..SimOptions::default()
    })
    .await;
    let diagnosis = doctor::diagnose(&options(sim.path())).await;
    let text = diagnosis.render();
    assert!(!diagnosis.can_send_and_receive(), "{text}");
    assert!(text.contains("PROBLEM: not registered"), "{text}");
    assert!(text.contains("fix: check the antenna"), "{text}");

    let (sim, _dir) = sim_with(SimOptions {
        pin: Some("1111".into()),
        ..SimOptions::default()
    })
    .await;
    let diagnosis = doctor::diagnose(&options(sim.path())).await;
    let text = diagnosis.render();
    assert!(!diagnosis.can_send_and_receive(), "{text}");
    assert!(text.contains("set modem.pin"), "{text}");

    let diagnosis = doctor::diagnose(&options(PathBuf::from("/dev/nonexistent-modem"))).await;
    assert!(!diagnosis.can_send_and_receive());
    assert!(
        diagnosis.render().contains("fix: check the cable"),
        "{}",
        diagnosis.render()
    );
}

#[tokio::test]
async fn a_port_another_program_drives_is_refused_at_once_with_the_reason() {
    let rig = rig_with(SimOptions::default(), |_| {}).await;
    wait_health(&rig.modem, "ready", |h| h.state == ModemState::Ready).await;
    let diagnosis = tokio::time::timeout(
        Duration::from_secs(10),
        doctor::diagnose(&options(rig.sim.path())),
    )
    .await
    .expect("refused at once, not after a wait");
    let text = diagnosis.render();
    assert!(!diagnosis.can_send_and_receive(), "{text}");
    assert!(text.contains("is in use by another program"), "{text}");
    assert!(text.contains("systemctl stop smsgate"), "{text}");
    // The daemon's modem was not disturbed: it still sends.
    rig.modem
        .send_part(&parts("still mine", false)[0], false)
        .await
        .expect("the first program still drives the modem");
}

#[tokio::test]
async fn vendor_noise_at_any_moment_changes_nothing() {
    let sim_options = SimOptions {
        urc_noise: true,
        noise_interval: Duration::from_millis(20),
        seed: Some(3),
        ..SimOptions::default()
    };
    let mut rig = ready_rig(sim_options).await;
    for i in 0..10 {
        send_message(&rig.modem, &format!("through the noise {i}"), false).await;
    }
    let long = "Noise between the prompt and the answer. ".repeat(8);
    send_message(&rig.modem, &long, false).await;
    rig.sim
        .inject_sms("+60111222333", "noisy line")
        .await
        .expect("inject");
    let (deliver, slot) = received(&mut rig.events).await;
    assert_eq!(deliver.user_data.text, "noisy line");
    rig.modem.confirm(slot).await.expect("deleted");
    assert!(rig.sim.submitted().await.len() >= 13);
    assert_eq!(rig.modem.health().timeouts, 0);
}

/// Runs `smsgate doctor -c CONFIG --port PORT` as a user would.
async fn doctor_command(config: &std::path::Path, port: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .arg("doctor")
        .arg("-c")
        .arg(config)
        .arg("--port")
        .arg(port)
        .env_remove("SMSGATE_API_TOKEN")
        .output()
        .await
        .expect("smsgate runs")
}

#[tokio::test]
async fn the_doctor_command_exits_zero_for_a_working_modem() {
    let (sim, dir) = sim_with(SimOptions::default()).await;
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        "[respond]\nchannel_id = \"doctor-test\"\napi_token = \"token\"\n",
    )
    .expect("config written");
    let output = doctor_command(&config, &sim.path()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("can send and receive"), "{stdout}");

    sim.set_registered(false).await;
    let output = doctor_command(&config, &sim.path()).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("fix:"));
}

#[tokio::test]
async fn a_full_storage_is_seen_and_drained_by_confirmations() {
    let sim_options = SimOptions {
        capacity: 2,
        ..SimOptions::default()
    };
    let mut rig = ready_rig(sim_options).await;
    for i in 1..=3 {
        rig.sim
            .inject_sms("+60111222333", &format!("message {i}"))
            .await
            .expect("inject");
    }
    let (first, first_slot) = received(&mut rig.events).await;
    let (second, second_slot) = received(&mut rig.events).await;
    assert_eq!(first.user_data.text, "message 1");
    assert_eq!(second.user_data.text, "message 2");
    // The third waits at the network while both slots hold unconfirmed messages.
    let health = wait_health(&rig.modem, "seeing the storage full", |h| {
        h.storage_used == Some(2) && h.storage_total == Some(2)
    })
    .await;
    assert_eq!(health.state, ModemState::Ready, "sending still works");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rig.events.recv())
            .await
            .is_err(),
        "nothing can arrive while the storage is full"
    );
    rig.modem.confirm(first_slot).await.expect("deleted");
    rig.modem.confirm(second_slot).await.expect("deleted");
    let (third, third_slot) = received(&mut rig.events).await;
    assert_eq!(third.user_data.text, "message 3");
    rig.modem.confirm(third_slot).await.expect("deleted");
    assert_eq!(rig.sim.stored_count().await, 0);
}

#[tokio::test]
async fn a_refused_pin_is_never_entered_again() {
    let sim_options = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let rig = rig_with(sim_options, |o| o.pin = Some("1357".into())).await;
    wait_health(&rig.modem, "refusing the PIN", |h| {
        h.last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused"))
    })
    .await;
    // Initialisation keeps retrying (every 100–400 ms here), publishing its health each time;
    // entering the wrong PIN on each attempt would lock the SIM with its PUK after three.
    let mut watch = rig.modem.health_watch();
    tokio::time::timeout(DEADLINE, async {
        for _ in 0..12 {
            watch.changed().await.expect("modem task alive");
        }
    })
    .await
    .expect("initialisation retried");
    let health = rig.modem.health();
    assert_eq!(health.sim, "SIM PIN", "{health:?}");
    assert_ne!(health.state, ModemState::Ready);
}

fn quirky(quirks: &[Quirk]) -> SimOptions {
    SimOptions {
        quirks: quirks
            .iter()
            .fold(Quirks::default(), |all, &quirk| all.with(quirk, true)),
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn pdus_framed_as_real_devices_frame_them_are_read_and_deleted() {
    for quirks in [
        &[Quirk::TrailingQuote][..],
        &[Quirk::SpaceSeparator],
        &[Quirk::FfPadding],
        &[
            Quirk::TrailingQuote,
            Quirk::SpaceSeparator,
            Quirk::FfPadding,
        ],
    ] {
        // Read on `+CMTI` (AT+CMGR) …
        let mut rig = ready_rig(quirky(quirks)).await;
        rig.sim
            .inject_sms("+60111222333", "framed oddly")
            .await
            .expect("inject");
        let (deliver, slot) = received(&mut rig.events).await;
        assert_eq!(deliver.user_data.text, "framed oddly", "{quirks:?}");
        assert!(deliver.warnings.is_empty(), "{quirks:?}");
        rig.modem.confirm(slot).await.expect("deleted");
        assert_eq!(rig.sim.stored_count().await, 0, "{quirks:?}");

        // … and by the start-up sweep (AT+CMGL=4).
        let (sim, dir) = sim_with(quirky(quirks)).await;
        sim.inject_sms("+60111222333", "swept up")
            .await
            .expect("inject");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while sim.stored_count().await == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let shutdown = CancellationToken::new();
        let (modem, mut events) =
            modem::spawn_with(options(sim.path()), tuning(), shutdown.clone());
        let (deliver, slot) = received(&mut events).await;
        assert_eq!(deliver.user_data.text, "swept up", "{quirks:?}");
        modem.confirm(slot).await.expect("deleted");
        assert_eq!(sim.stored_count().await, 0, "{quirks:?}");
        shutdown.cancel();
        drop(dir);
    }
}

#[tokio::test]
async fn routed_pdus_with_a_trailing_quote_or_on_the_header_line() {
    let sim_options = SimOptions {
        notify: NotifyMode::Cmt,
        ..quirky(&[Quirk::TrailingQuote, Quirk::SpaceSeparator])
    };
    let mut rig = ready_rig(sim_options).await;
    rig.sim
        .inject_sms("+60111222333", "routed oddly")
        .await
        .expect("inject");
    let (deliver, slot) = received(&mut rig.events).await;
    assert_eq!(deliver.user_data.text, "routed oddly");
    rig.modem.confirm(slot).await.expect("acknowledged");
}

#[tokio::test]
async fn a_modem_that_omits_the_ok_after_cpin_still_starts() {
    // Wavecom: `+CPIN: READY` and no `OK`. With a PIN the first answer is `+CPIN: SIM PIN`,
    // also without its `OK`.
    let rig = ready_rig(quirky(&[Quirk::NoOkAfterCpin])).await;
    assert_eq!(rig.modem.health().sim, "READY");
    send_message(&rig.modem, "after a silent CPIN", false).await;

    let sim_options = SimOptions {
        pin: Some("2468".into()),
        ..quirky(&[Quirk::NoOkAfterCpin])
    };
    let rig = rig_with(sim_options, |o| o.pin = Some("2468".into())).await;
    wait_health(&rig.modem, "ready", |h| h.state == ModemState::Ready).await;
    send_message(&rig.modem, "after the PIN", false).await;
}

#[tokio::test]
async fn undecodable_pdus_are_handed_over_to_be_kept() {
    let mut rig = ready_rig(SimOptions::default()).await;
    // TP-OA +60123456789, then TP-UDL 200 septets: more than a PDU holds. The sender is
    // readable, the message is not.
    rig.sim
        .inject_pdu("00040B910621436587F9000062500121000000C8")
        .await
        .expect("inject");
    let (pdu, reason, sender, status_report, slot) = loop {
        if let ModemEvent::Unreadable {
            pdu,
            reason,
            sender,
            status_report,
            slot,
        } = next_event(&mut rig.events).await
        {
            break (pdu, reason, sender, status_report, slot);
        }
    };
    assert_eq!(pdu, "00040B910621436587F9000062500121000000C8");
    assert!(reason.contains("user data length 200"), "{reason}");
    assert_eq!(sender.map(|s| s.value).as_deref(), Some("+60123456789"));
    assert!(!status_report);
    assert!(matches!(slot, StorageSlot::Stored { .. }), "{slot:?}");
    assert_eq!(rig.sim.stored_count().await, 1, "kept until confirmed");
    rig.modem.confirm(slot).await.expect("deleted");
    assert_eq!(rig.sim.stored_count().await, 0);
}

#[tokio::test]
async fn status_reports_with_non_bcd_times_are_read() {
    let mut rig = ready_rig(quirky(&[Quirk::NonBcdTimestamps])).await;
    let references = send_message(&rig.modem, "report me", true).await;
    let (report, slot) = report_for(&mut rig).await;
    assert_eq!(report.message_reference, references[0]);
    assert_eq!((report.timestamp, report.discharge_time), (None, None));
    assert_eq!(report.status_class(), pdu::StatusClass::Delivered);
    rig.modem.confirm(slot).await.expect("confirmed");
}
