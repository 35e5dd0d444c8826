//! The SIM balance by USSD, end to end: the real gateway asks the simulated network at start,
//! the answer's amount reaches `/health` (degraded below `low_balance`, the reason in words),
//! `/metrics`, the store and the dashboard's `/api/modems`; and at the driver, the interval,
//! UCS-2 answers, refusals and unanswered requests (cancelled, retried, sending unblocked).

use std::time::Duration;

use serde_json::Value;
use smsgate::at::AtConfig;
use smsgate::config::BalanceCheck;
use smsgate::modem::{self, ModemHandle, ModemOptions, Tuning};
use smsgate::sim::{self, Quirk, Quirks, SimHandle, SimOptions, UssdEncoding};
use tokio_util::sync::CancellationToken;

use crate::daemon::{check, health};
use crate::harness::{self, Harness, TOKEN, free_port, wait_until};

/// Generous: two cores shared by several builds.
const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `/health` (with the token) has a balance check that is `ok` (and the status
/// that goes with it); returns its detail.
async fn balance_detail(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    ok: bool,
) -> String {
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = health(client, address).await;
        if let Some((found, detail)) = check(&body, "balance") {
            if found == ok && (status == 503) != ok {
                return detail.to_owned();
            }
        }
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for the balance check (ok = {ok}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/modems` on the dashboard, once it listens.
async fn api_modems(client: &reqwest::Client, port: u16) -> Value {
    let url = format!("http://127.0.0.1:{port}/api/modems");
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        match client.get(&url).send().await {
            Ok(response) => return response.json().await.expect("json"),
            Err(error) => assert!(
                std::time::Instant::now() < until,
                "the dashboard does not answer: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sim_answering(answer: &str) -> SimOptions {
    SimOptions {
        ussd: vec![("*100#".to_owned(), answer.to_owned())],
        ussd_delay: Duration::from_millis(200),
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn a_low_balance_is_read_at_start_and_shown_on_health_metrics_and_dashboard() {
    let admin = free_port();
    let harness = Harness::new(
        sim_answering("Your balance is 3.20 USD. Valid until 31-12-2026."),
        &format!(
            "[modem]\nbalance_ussd = \"*100#\"\nbalance_pattern = \"balance is ([0-9.]+)\"\n\
             low_balance = 5.0\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n"
        ),
    )
    .await;
    let gateway = harness.start().await;
    let client = &harness.client;

    let detail = balance_detail(client, gateway.address, false).await;
    assert!(detail.contains("3.2 is below low_balance 5"), "{detail}");
    assert!(detail.contains("top up"), "{detail}");
    assert!(!detail.contains("  "), "one line of words: {detail}");
    assert!(detail.contains("Your balance is 3.20 USD"), "{detail}");
    // Without the token: only the verdict.
    let plain = client
        .get(format!("http://{}/health", gateway.address))
        .send()
        .await
        .expect("health");
    assert_eq!(plain.status().as_u16(), 503);

    let metrics = client
        .get(format!("http://{}/metrics", gateway.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|line| line == "smsgate_sim_balance 3.2"),
        "{metrics}"
    );
    assert!(metrics.contains("smsgate_sim_balance_read_timestamp_seconds "));

    let stored = gateway
        .gateway
        .as_ref()
        .expect("running")
        .store()
        .balance("modem")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.amount, Some(3.2));
    assert!(stored.text.starts_with("Your balance is 3.20 USD"));

    let modems = api_modems(client, admin).await;
    let modem = &modems["modems"][0];
    assert_eq!(modem["balance"], 3.2, "{modems}");
    assert_eq!(modem["balance_low"], true);
    assert_eq!(modem["balance_read_ms"], stored.read_ms);
    assert!(
        modem["balance_text"]
            .as_str()
            .is_some_and(|text| text.starts_with("Your balance is 3.20 USD")),
        "{modems}"
    );
    assert_eq!(harness.sim.ussd_requests().await, vec!["*100#".to_owned()]);
    gateway.stop().await;

    // `smsgate status` over SSH says it too.
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["status", "-c"])
        .arg(&harness.config_path)
        .env_remove(smsgate::config::TOKEN_ENV)
        .output()
        .await
        .expect("status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("balance    modem: 3.2, below low_balance 5 (\"Your balance is 3.20 USD."),
        "{text}"
    );

    // After a restart the dashboard shows the stored reading before the next one comes.
    harness.sim.set_ussd_answer("*100#", None).await;
    let gateway = harness.start().await;
    let modems = api_modems(client, admin).await;
    assert_eq!(modems["modems"][0]["balance"], 3.2, "{modems}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_good_balance_keeps_health_ok_and_the_first_number_is_taken_without_a_pattern() {
    let harness = Harness::new(
        sim_answering("Baki anda RM12,50. Sah hingga 31/12."),
        "[modem]\nbalance_ussd = \"*100#\"\nlow_balance = 5\n",
    )
    .await;
    let gateway = harness.start().await;
    let detail = balance_detail(&harness.client, gateway.address, true).await;
    assert!(detail.starts_with("12.5 (low_balance 5;"), "{detail}");
    gateway.stop().await;
}

/// A driver on the simulator with a balance check every `interval` and short timings.
struct Rig {
    sim: SimHandle,
    modem: ModemHandle,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn rig(sim_options: SimOptions, interval: Duration, ussd_timeout: Duration) -> Rig {
    harness::init_logging();
    let dir = tempfile::tempdir().expect("temporary directory");
    let sim = sim::spawn(SimOptions {
        link: Some(dir.path().join("ttyMODEM")),
        ..sim_options
    })
    .await
    .expect("simulator starts");
    let options = ModemOptions {
        port: sim.path(),
        endpoint: None,
        baud: 115_200,
        pin: None,
        delivery_reports: true,
        sweep_interval: Duration::from_secs(60),
        command_timeout: Duration::from_millis(1500),
        send_timeout: Duration::from_secs(5),
        reset_on_failure: false,
        balance: Some(BalanceCheck {
            code: "*100#".into(),
            interval,
            pattern: None,
            low: Some(5.0),
        }),
        hangup_calls: false,
    };
    let tuning = Tuning {
        at: AtConfig {
            resync_timeout: Duration::from_millis(300),
            settle: Duration::from_millis(30),
            ..AtConfig::default()
        },
        ussd_timeout,
        balance_retry: Duration::from_millis(500),
        ..Tuning::default()
    };
    let shutdown = CancellationToken::new();
    let (modem, _events) = modem::spawn_with(options, tuning, shutdown.clone());
    Rig {
        sim,
        modem,
        shutdown,
        _dir: dir,
    }
}

async fn wait_for_balance(
    modem: &ModemHandle,
    what: &str,
    mut ok: impl FnMut(&modem::Health) -> bool,
) {
    wait_until(DEADLINE, what, || {
        let health = modem.health();
        let done = ok(&health);
        async move { done }
    })
    .await;
}

#[tokio::test]
async fn the_balance_is_asked_again_at_the_interval_and_ucs2_answers_are_decoded() {
    let rig = rig(
        sim_answering("Your balance is 12.50 USD."),
        Duration::from_secs(1),
        Duration::from_secs(10),
    )
    .await;
    wait_for_balance(&rig.modem, "the first reading", |health| {
        health
            .balance
            .as_ref()
            .is_some_and(|b| b.amount == Some(12.5))
    })
    .await;
    // The operator answers in Cyrillic now: UCS-2 (dcs 72) on the line.
    rig.sim
        .set_ussd_answer("*100#", Some("Баланс: 3.75 руб."))
        .await;
    rig.sim.set_ussd_encoding(UssdEncoding::Ucs2Hex).await;
    wait_for_balance(&rig.modem, "the reading at the interval", |health| {
        health
            .balance
            .as_ref()
            .is_some_and(|b| b.text == "Баланс: 3.75 руб.")
    })
    .await;
    let balance = rig.modem.health().balance.expect("read");
    assert_eq!(balance.amount, Some(3.75));
    assert!(balance.is_low());
    assert!(rig.sim.ussd_requests().await.len() >= 2);
}

#[tokio::test]
async fn a_menu_answer_over_several_lines_is_read_whole_and_closed() {
    // The amount is on the second line of the operator's text, a menu that waits for a reply
    // (`+CUSD: 1`): the driver must close it, or the network refuses the next request.
    let sim_options = SimOptions {
        ussd_menus: vec!["*100#".to_owned()],
        ..sim_answering("Welcome to Prepaid\nMain: 3.40 USD\n1. Buy data\n2. Offers")
    };
    let rig = rig(
        sim_options,
        Duration::from_secs(3600),
        Duration::from_secs(10),
    )
    .await;
    wait_for_balance(&rig.modem, "the menu's amount is read", |health| {
        health.balance.is_some()
    })
    .await;
    let balance = rig.modem.health().balance.expect("read");
    assert_eq!(
        balance.text,
        "Welcome to Prepaid\nMain: 3.40 USD\n1. Buy data\n2. Offers"
    );
    assert_eq!(balance.amount, Some(3.4));
    // The session was closed: a caller's next request is answered, not refused.
    rig.sim
        .set_ussd_answer("*124#", Some("Your number is +60123456789"))
        .await;
    let answer = rig.modem.ussd("*124#").await.expect("answered");
    assert_eq!(answer.text.as_deref(), Some("Your number is +60123456789"));
}

#[tokio::test]
async fn a_refusal_is_reported_and_retried() {
    // Modems with this quirk refuse a code the network does not know with +CME ERROR: 100.
    let sim_options = SimOptions {
        quirks: Quirks::default().with(Quirk::UssdCmeError, true),
        ussd: Vec::new(),
        ..SimOptions::default()
    };
    let rig = rig(
        sim_options,
        Duration::from_secs(3600),
        Duration::from_secs(10),
    )
    .await;
    wait_for_balance(&rig.modem, "the refusal is reported", |health| {
        health
            .balance_error
            .as_deref()
            .is_some_and(|error| error.contains("refused"))
    })
    .await;
    let error = rig.modem.health().balance_error.expect("error");
    assert!(error.contains("+CME ERROR: 100"), "{error}");
    assert!(rig.modem.health().balance.is_none());
    // The retry comes long before the interval.
    rig.sim
        .set_ussd_answer("*100#", Some("Your balance is 12.50 USD."))
        .await;
    wait_for_balance(&rig.modem, "the retry reads the balance", |health| {
        health
            .balance
            .as_ref()
            .is_some_and(|b| b.amount == Some(12.5))
    })
    .await;
    assert!(rig.modem.health().balance_error.is_none());
}

#[tokio::test]
async fn an_unanswered_request_is_cancelled_and_never_holds_sending_up() {
    let sim_options = SimOptions {
        ussd_delay: Duration::from_secs(3600),
        ..sim_answering("Your balance is 12.50 USD.")
    };
    // A USSD timeout far longer than the send may take, so "not held up" is not a race.
    let rig = rig(
        sim_options,
        Duration::from_secs(3600),
        Duration::from_secs(10),
    )
    .await;
    wait_until(DEADLINE, "the balance request is out", || async {
        !rig.sim.ussd_requests().await.is_empty()
    })
    .await;
    // While the network is silent, a part goes out at once.
    let recipient = smsgate::pdu::Address::parse("+60123456789").expect("recipient");
    let part =
        smsgate::pdu::encode_submit(&recipient, "hi", &smsgate::pdu::SubmitOptions::default())
            .expect("encodes")
            .remove(0);
    let sent = tokio::time::timeout(Duration::from_secs(5), rig.modem.send_part(&part, false))
        .await
        .expect("sending is not held up behind the USSD request");
    assert!(sent.is_ok(), "{sent:?}");
    assert!(rig.modem.health().balance_error.is_none());
    wait_for_balance(&rig.modem, "the timeout is reported", |health| {
        health
            .balance_error
            .as_deref()
            .is_some_and(|error| error.contains("did not answer within 10s"))
    })
    .await;
    // Asked again after the retry pause.
    let before = rig.sim.ussd_requests().await.len();
    wait_until(DEADLINE, "the balance is asked again", || async {
        rig.sim.ussd_requests().await.len() > before
    })
    .await;
}
