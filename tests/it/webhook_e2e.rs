//! The webhook path end to end: the real gateway on the simulated modem, a temporary database and
//! the local respond.io stand-in, which takes its time to answer (as respond.io does at a Pi's
//! distance) or refuses the token or the URL.
//!
//! Each test is a promise of issue 8 / DESIGN.md §2: concurrent requests never reorder one
//! contact, a reply overtakes a broadcast's receipts, a refused URL (404) or token (401) pauses
//! delivery without parking anything, and the operator hears about the retired webhook host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use smsgate::app::standin::{Behaviour, Recorded};
use smsgate::sim::SimOptions;
use tokio::io::AsyncBufReadExt as _;

use crate::harness::{Harness, InProcess, TOKEN, statuses_of, wait_until};
use crate::webhook::{assert_paced, window};

const LONG: Duration = Duration::from_secs(120);

fn sim() -> SimOptions {
    SimOptions {
        report_delay: Duration::from_millis(50),
        ..SimOptions::default()
    }
}

/// `/health` with the token: the whole report.
async fn health(h: &Harness, address: SocketAddr) -> Value {
    h.client
        .get(format!("http://{address}/health"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("health answers")
        .json()
        .await
        .expect("health is JSON")
}

/// The check called `name` in a health report.
fn check(report: &Value, name: &str) -> Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn webhook_stats(gw: &InProcess) -> smsgate::store::WebhookStats {
    gw.gateway
        .as_ref()
        .expect("running")
        .store()
        .webhook_stats(0)
        .await
        .expect("stats")
}

/// The texts of the `message` events the stand-in accepted from `contact`, in order.
fn inbound_texts(h: &Harness, contact: &str) -> Vec<String> {
    h.standin
        .accepted_events()
        .iter()
        .filter(|(c, e)| c == contact && e["type"] == "message")
        .map(|(_, e)| e["message"]["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Requests from `from` on (by arrival) answered `code`, each at least `gap` after the one
/// before: the pause held every request in between.
fn assert_paused(requests: &[Recorded], code: u16, from: usize, gap: Duration) {
    let refused: Vec<&Recorded> = requests.iter().filter(|r| r.answered == code).collect();
    for pair in refused[from..].windows(2) {
        let between = pair[1].at.duration_since(pair[0].at);
        assert!(
            between >= gap,
            "two requests {between:?} apart while paused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_concurrency_keeps_each_contacts_order_with_random_answer_delays() {
    let h = Harness::new(sim(), "").await;
    h.standin
        .set_answer_delay_range(Duration::ZERO, Duration::from_millis(400));
    let gw = h.start().await;
    // Nothing is queued before the first SMS below, so the log holds every grant.
    let limiter = gw
        .gateway
        .as_ref()
        .expect("running")
        .webhook_limiter()
        .clone();
    limiter.record_grants();
    let contacts: Vec<String> = (0..6).map(|c| format!("+6013{c:07}")).collect();
    let mut outbound: HashMap<&str, Vec<String>> = HashMap::new();
    for round in 0..5 {
        for contact in &contacts {
            h.sim
                .inject_sms(contact, &format!("{contact} wrote #{round}"))
                .await
                .expect("inject");
            let m_id = h
                .send_text(gw.address, contact, &format!("answer #{round}"))
                .await;
            outbound.entry(contact).or_default().push(m_id);
        }
    }
    wait_until(LONG, "every message and receipt arrived", || async {
        contacts.iter().all(|c| inbound_texts(&h, c).len() >= 5)
            && outbound
                .values()
                .flatten()
                .all(|m| statuses_of(&h.standin, m).len() >= 2)
    })
    .await;

    assert_eq!(
        h.standin.overlaps(),
        0,
        "two requests for one contact at once"
    );
    assert!(
        h.standin.most_held_at_once() >= 2,
        "the requests never overlapped"
    );
    let accepted = h.standin.accepted_events();
    for contact in &contacts {
        let expected: Vec<String> = (0..5).map(|r| format!("{contact} wrote #{r}")).collect();
        assert_eq!(
            inbound_texts(&h, contact),
            expected,
            "messages of {contact}"
        );
        // Each message's receipts in order, and the messages' `sent` in the order they went.
        let ids = &outbound[contact.as_str()];
        for m_id in ids {
            assert_eq!(
                statuses_of(&h.standin, m_id),
                ["sent", "delivered"],
                "{m_id}"
            );
        }
        let sent_order: Vec<&str> = accepted
            .iter()
            .filter(|(c, e)| {
                c == contact && e["type"] == "message_status" && e["status"]["value"] == "sent"
            })
            .filter_map(|(_, e)| e["mId"].as_str())
            .collect();
        assert_eq!(sent_order, *ids, "sent receipts of {contact}");
    }
    let arrivals: Vec<Instant> = h.standin.requests().iter().map(|r| r.at).collect();
    // The gateway's limit (`rate_limit`, 20 by default), over the gateway's window.
    let rate = h.config.respond.rate_limit;
    assert_paced(&limiter.grants(), &arrivals, rate as usize, window(rate));
    let stats = webhook_stats(&gw).await;
    assert_eq!((stats.pending, stats.dead), (0, 0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_a_reply_overtakes_100_queued_receipts_of_other_contacts() {
    // One request at a time and a slow respond.io: the receipts of a 100-message broadcast
    // pile up, and only the lanes can let the reply through first.
    let h = Harness::new(sim(), "[respond]\nmax_in_flight = 1").await;
    h.standin.set_answer_delay(Duration::from_millis(300));
    let gw = h.start().await;
    for n in 0..100 {
        h.send_text(gw.address, &format!("+6014{n:07}"), "broadcast")
            .await;
    }
    wait_until(LONG, "120 receipts are queued", || async {
        webhook_stats(&gw).await.pending >= 120
    })
    .await;
    let reply = "STOP";
    h.sim
        .inject_sms("+60199999999", reply)
        .await
        .expect("inject");
    // Count from the moment the reply's event is queued (it commits with the inbound row),
    // not from the injection: the modem and the disk take their time before that, and the
    // receipts keep going meanwhile, as they should.
    let store = gw.gateway.as_ref().expect("running").store().clone();
    wait_until(LONG, "the reply is committed", || async {
        store
            .console_inbound(Some("60199999999"), 1)
            .await
            .expect("inbound")
            .iter()
            .any(|row| row.state == "complete" && row.forwarded)
    })
    .await;
    let arrived_before = h.standin.requests().len();
    wait_until(LONG, "the reply reached respond.io", || async {
        inbound_texts(&h, "+60199999999") == [reply]
    })
    .await;
    let still_queued = webhook_stats(&gw).await.pending;
    let requests = h.standin.requests();
    let reply_index = requests
        .iter()
        .position(|r| r.contact_id() == "+60199999999")
        .expect("the reply's request");
    assert!(
        still_queued >= 100,
        "only {still_queued} receipts were still queued when the reply arrived"
    );
    // With one request at a time, only the request already chosen when the reply was queued
    // can go before it (it may still be on its way to the stand-in); every later choice is the
    // reply's, whatever the machine's load.
    let meanwhile = reply_index.saturating_sub(arrived_before);
    assert!(
        meanwhile <= 1,
        "{meanwhile} requests went between the reply being queued and the reply: {:?}",
        requests[arrived_before..reply_index]
            .iter()
            .map(Recorded::contact_id)
            .collect::<Vec<_>>()
    );
    gw.stop().await;
}

/// Shutdown while a request is on its way: the answer that arrives within the drain is
/// recorded, so the event is not posted a second time after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_a_request_in_flight_at_shutdown_records_its_answer() {
    let mut h = Harness::new(sim(), "").await;
    // The answer takes 1.5 s, well past the moment the test asks for the stop and well within
    // the 3 s drain; the client must not give up on it first.
    h.config.respond.request_timeout = Duration::from_secs(10);
    h.standin.set_answer_delay(Duration::from_millis(1500));
    let gw = h.start().await;
    h.sim
        .inject_sms("+60188888888", "just before the stop")
        .await
        .expect("inject");
    wait_until(LONG, "the request is with respond.io", || async {
        !h.standin.requests().is_empty()
    })
    .await;
    let store = gw.gateway.as_ref().expect("running").store().clone();
    gw.stop().await;
    let requests = h.standin.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].answered_at.is_some(),
        "answered before the stop ended"
    );
    let stats = store.webhook_stats(0).await.expect("stats");
    assert_eq!(
        (stats.pending, stats.dead),
        (0, 0),
        "the answer was recorded: nothing to post again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_a_404_degrades_health_and_keeps_the_events_until_the_url_works() {
    let h = Harness::new(sim(), "[respond]\npause_retry_interval = \"1s\"").await;
    h.standin.set_behaviour(Behaviour::Status(404));
    let gw = h.start().await;
    let contacts = ["+60150000001", "+60150000002"];
    for n in 0..3 {
        for contact in contacts {
            h.sim
                .inject_sms(contact, &format!("{contact} #{n}"))
                .await
                .expect("inject");
        }
    }
    wait_until(LONG, "/health names the 404", || async {
        let report = health(&h, gw.address).await;
        let delivery = check(&report, "webhook_delivery");
        report["status"] == "degraded"
            && delivery["ok"] == false
            && delivery["detail"]
                .as_str()
                .is_some_and(|d| d.contains("HTTP 404") && d.contains("respond.webhook_url"))
    })
    .await;
    wait_until(LONG, "four refused requests", || async {
        h.standin
            .requests()
            .iter()
            .filter(|r| r.answered == 404)
            .count()
            >= 4
    })
    .await;
    // Once all six SMS are committed, so are their six events (one transaction each): none
    // may be delivered or parked.
    let store = gw.gateway.as_ref().expect("running").store().clone();
    wait_until(LONG, "every SMS is committed", || async {
        store
            .console_inbound(Some("6015000000"), 10)
            .await
            .expect("inbound")
            .iter()
            .filter(|row| row.state == "complete" && row.forwarded)
            .count()
            == 6
    })
    .await;
    let stats = webhook_stats(&gw).await;
    assert_eq!(stats.dead, 0, "a 404 alone parks nothing");
    assert_eq!(stats.pending, 6);
    // Up to one request per contact may have left before the first 404 was known.
    assert_paused(&h.standin.requests(), 404, 1, Duration::from_millis(900));

    // The URL works again (as after fixing respond.webhook_url and a restart).
    h.standin.set_behaviour(Behaviour::Accept);
    wait_until(LONG, "every message arrived", || async {
        contacts.iter().all(|c| inbound_texts(&h, c).len() >= 3)
    })
    .await;
    for contact in contacts {
        let expected: Vec<String> = (0..3).map(|n| format!("{contact} #{n}")).collect();
        assert_eq!(inbound_texts(&h, contact), expected);
    }
    wait_until(LONG, "/health is ok again", || async {
        check(&health(&h, gw.address).await, "webhook_delivery")["ok"] == true
    })
    .await;
    let stats = webhook_stats(&gw).await;
    assert_eq!((stats.pending, stats.dead), (0, 0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_a_refused_token_pauses_delivery_and_resumes_by_itself_with_nothing_dead() {
    let h = Harness::new(sim(), "[respond]\npause_retry_interval = \"1s\"").await;
    h.standin.set_behaviour(Behaviour::Status(401));
    let gw = h.start().await;
    let contacts = ["+60160000001", "+60160000002", "+60160000003"];
    for n in 0..3 {
        for contact in contacts {
            h.sim
                .inject_sms(contact, &format!("{contact} #{n}"))
                .await
                .expect("inject");
        }
    }
    let m_id = h.send_text(gw.address, contacts[0], "an answer").await;
    wait_until(LONG, "/health says the token is refused", || async {
        let delivery = check(&health(&h, gw.address).await, "webhook_delivery");
        delivery["ok"] == false
            && delivery["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("respond.io rejects the API token"))
    })
    .await;
    wait_until(LONG, "five refused requests", || async {
        h.standin
            .requests()
            .iter()
            .filter(|r| r.answered == 401)
            .count()
            >= 5
    })
    .await;
    assert_eq!(webhook_stats(&gw).await.dead, 0, "nothing dead for a token");
    // Up to one request per contact may have left before the first 401 was known; then one a
    // pause apart.
    assert_paused(&h.standin.requests(), 401, 2, Duration::from_millis(900));

    // The token is accepted again (rotated back in respond.io): delivery resumes by itself.
    h.standin.set_behaviour(Behaviour::Accept);
    wait_until(LONG, "everything arrived", || async {
        contacts.iter().all(|c| inbound_texts(&h, c).len() >= 3)
            && statuses_of(&h.standin, &m_id).len() >= 2
    })
    .await;
    for contact in contacts {
        let expected: Vec<String> = (0..3).map(|n| format!("{contact} #{n}")).collect();
        assert_eq!(inbound_texts(&h, contact), expected, "order of {contact}");
    }
    assert_eq!(statuses_of(&h.standin, &m_id), ["sent", "delivered"]);
    wait_until(LONG, "/health is ok again", || async {
        check(&health(&h, gw.address).await, "webhook_delivery")["ok"] == true
    })
    .await;
    let stats = webhook_stats(&gw).await;
    assert_eq!((stats.pending, stats.dead), (0, 0));
    gw.stop().await;
}

/// The configuration file of `h`, with `webhook_url` replaced.
fn config_with_url(h: &Harness, url: &str) -> String {
    let text = std::fs::read_to_string(&h.config_path).expect("config");
    text.lines()
        .map(|line| {
            if line.starts_with("webhook_url") {
                format!("webhook_url = {url:?}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_the_retired_host_is_named_by_check_config_and_at_start_up() {
    let h = Harness::new(sim(), "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let current = dir.path().join("current.toml");
    std::fs::write(
        &current,
        config_with_url(&h, "https://webhook.respond.io/custom/channel/webhook/"),
    )
    .expect("write");
    let retired = dir.path().join("retired.toml");
    std::fs::write(
        &retired,
        config_with_url(&h, "https://app.respond.io/custom/channel/webhook/"),
    )
    .expect("write");
    let check_config = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(["check-config", "-c"])
            .arg(path)
            .env_remove(smsgate::config::TOKEN_ENV)
            .output()
            .expect("check-config runs")
    };
    let output = check_config(&current);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!stdout.contains("warning"), "{stdout}");

    let output = check_config(&retired);
    assert!(output.status.success(), "a warning, not a failure");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let warning = stdout
        .lines()
        .find(|line| line.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {stdout}"));
    for words in [
        "app.respond.io",
        "retired",
        "channel's settings",
        "https://webhook.respond.io/custom/channel/webhook/",
    ] {
        assert!(warning.contains(words), "{words:?} missing: {warning}");
    }

    // The daemon says it at start-up, as a warning in its log.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&retired)
        .env("RUST_LOG", "smsgate=warn")
        .env_remove(smsgate::config::TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("smsgate runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("app.respond.io") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the warning within a minute")
    .expect("the warning before the log ends");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("https://webhook.respond.io/custom/channel/webhook/"),
        "{line}"
    );
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_e2e_doctor_probes_a_port_without_a_configuration_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("modem");
    let sim = smsgate::sim::spawn(SimOptions {
        link: Some(link.clone()),
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .arg("doctor")
        .arg("--port")
        .arg(&link)
        .env_remove(smsgate::config::TOKEN_ENV)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("doctor runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("OK: this modem can send and receive SMS."),
        "{stdout}"
    );
    assert!(stdout.contains(&link.display().to_string()), "{stdout}");
    if !std::path::Path::new(smsgate::config::DEFAULT_PATH).exists() {
        assert!(
            stdout.contains("probing with the default modem settings"),
            "{stdout}"
        );
    }
    // A file named with -c must exist; its OS error is said once.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["doctor", "-c", "/nonexistent/smsgate.toml", "--port"])
        .arg(&link)
        .output()
        .await
        .expect("doctor runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr
            .trim()
            .starts_with("smsgate: cannot read /nonexistent/smsgate.toml (the configuration): No such file or directory (os error 2); pass the file with -c"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    sim.shutdown().await;
}
