//! The operator's commands as they are typed: `check-config`, `send` (and its `message_echo`),
//! `status`, and `run` stopped by SIGTERM.

use std::process::Output;
use std::time::Duration;

use crate::harness::{CONTACT, Harness, wait_until};
use smsgate::sim::SimOptions;

fn smsgate(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env_remove(smsgate::config::TOKEN_ENV)
        .env("RUST_LOG", "warn")
        .output()
        .expect("smsgate runs")
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_bad_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[respond]\nchannel_id = \"c\"\napi_token = \"secret-token\"\n",
    )
    .expect("write");
    let output = smsgate(&["check-config", "-c", good.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(
        !stdout.contains("secret-token"),
        "the token is never printed: {stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n[sms]\nmax_part = 3\n",
    )
    .expect("write");
    let output = smsgate(&["check-config", "-c", bad.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("max_part"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let output = smsgate(&["check-config", "-c", "/nonexistent/smsgate.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("/nonexistent/smsgate.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_queues_an_sms_reported_as_an_echo_and_status_shows_it() {
    let h = Harness::new(SimOptions::default(), "").await;
    let config = h.config_path.to_str().expect("utf-8").to_owned();
    // Queued while no daemon runs: it waits in the outbox.
    let output = smsgate(&[
        "send",
        "-c",
        &config,
        "--to",
        CONTACT,
        "sent from the shell",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let queued = text(&output.stdout);
    assert!(queued.contains("queued"), "{queued}");
    assert!(!queued.contains(CONTACT), "the number is masked: {queued}");

    let output = smsgate(&["status", "-c", &config]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status = text(&output.stdout);
    assert!(status.contains("queued 1"), "{status}");

    let refused = smsgate(&["send", "-c", &config, "--to", "0123", "x"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--to"));

    let gw = h.start().await;
    let events = h
        .standin
        .wait_for(Duration::from_secs(60), |events| {
            events.iter().any(|(_, e)| e["type"] == "message_echo")
                && events
                    .iter()
                    .any(|(_, e)| e["status"]["value"] == "delivered")
        })
        .await
        .expect("echo and delivered arrive");
    let echo = &events
        .iter()
        .find(|(_, e)| e["type"] == "message_echo")
        .expect("echo")
        .1;
    assert_eq!(echo["message"]["text"], "sent from the shell");
    let submitted = h.sim.submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].submit.user_data.text, "sent from the shell");
    gw.stop().await;

    let output = smsgate(&["status", "-c", &config, "--json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status --json is JSON");
    assert_eq!(report["outbound"]["delivered"], 1, "{report}");
    assert_eq!(report["webhook_pending"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_cleanly_on_sigterm_within_seconds() {
    let h = Harness::new(SimOptions::default(), "").await;
    let mut child = h.spawn_binary().await;
    let (status, body) = h
        .post_text(child.address, CONTACT, "before the signal")
        .await;
    assert_eq!(status, 200, "{body}");
    let pid = child.process.id().expect("pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.process.wait())
        .await
        .expect("stops within 15 s")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");
    wait_until(Duration::from_secs(5), "the port is free again", || async {
        tokio::net::TcpListener::bind(h.config.http.listen)
            .await
            .is_ok()
    })
    .await;
}
