//! `smsgate ussd`, the built binary: through the running daemon's dashboard listener (open,
//! and with a password), and by opening the simulated modem's port itself when no daemon runs.

use std::process::Output;
use std::time::Duration;

use smsgate::sim::{SimOptions, UssdEncoding};

use crate::harness::{Harness, free_port, wait_until};

const ANSWER: &str = "Your balance is 12.50 USD. Valid until 31-12-2026.";

async fn ussd(harness: &Harness, args: &[&str], password: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"));
    command
        .arg("ussd")
        .arg("-c")
        .arg(&harness.config_path)
        .args(args)
        .env("RUST_LOG", "smsgate=info")
        .env_remove(smsgate::config::ADMIN_PASSWORD_ENV)
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env(smsgate::config::ADMIN_PASSWORD_ENV, password);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("smsgate ussd finishes")
        .expect("smsgate ussd runs")
}

/// The dashboard binds after the gateway started: until then `smsgate ussd` would find no
/// daemon and open the port itself (which the daemon holds).
async fn dashboard_listens(port: u16) {
    wait_until(Duration::from_secs(30), "the dashboard listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn opened_directly(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("opening the modem port directly")
}

fn sim() -> SimOptions {
    SimOptions {
        ussd_delay: Duration::from_millis(200),
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn through_the_running_daemon_open_and_with_a_password() {
    let admin = free_port();
    let mut harness =
        Harness::new(sim(), &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n")).await;
    let gateway = harness.start().await;
    dashboard_listens(admin).await;
    let output = ussd(&harness, &["*100#"], None).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), ANSWER);
    assert!(!opened_directly(&output), "{output:?}");
    // An unknown modem name, and a code the network does not know: refused in words.
    let output = ussd(&harness, &["--modem", "sim-z", "*100#"], None).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no modem named \"sim-z\""));
    let output = ussd(&harness, &["*999#"], None).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not support this code"), "{stderr}");
    gateway.stop().await;

    // With a password, by HTTP Basic; the wrong one is refused.
    let password = "a long dashboard password";
    harness.config.admin.password = Some(password.to_owned());
    harness.sim.set_ussd_encoding(UssdEncoding::Gsm7Hex).await;
    let gateway = harness.start().await;
    dashboard_listens(admin).await;
    let output = ussd(&harness, &["--modem", "modem", "*100#"], Some(password)).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), ANSWER);
    let output = ussd(&harness, &["*100#"], Some("not the password")).await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401"),
        "{output:?}"
    );
    gateway.stop().await;
    let requests = harness.sim.ussd_requests().await;
    assert_eq!(requests, vec!["*100#", "*999#", "*100#"], "{requests:?}");
}

#[tokio::test]
async fn without_a_daemon_the_port_is_opened_directly() {
    let harness = Harness::new(sim(), "").await;
    let output = ussd(&harness, &["*100#"], None).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), ANSWER);
    assert!(opened_directly(&output), "{output:?}");
    assert_eq!(harness.sim.ussd_requests().await, vec!["*100#"]);
    // A code that is no USSD code never reaches the modem.
    let output = ussd(&harness, &["*100#;ATD123"], None).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a USSD code"));
    assert_eq!(harness.sim.ussd_requests().await.len(), 1);
}

#[tokio::test]
async fn a_port_the_daemon_holds_is_refused_at_once_when_its_dashboard_is_off() {
    let harness = Harness::new(sim(), "[admin]\nlisten = \"off\"\n").await;
    let gateway = harness.start().await;
    gateway.wait_registered().await;
    let started = std::time::Instant::now();
    let output = ussd(&harness, &["*100#"], None).await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is in use by another program"), "{stderr}");
    // Refused, not waited out (the wait for an unready modem is a minute).
    assert!(started.elapsed() < Duration::from_secs(30), "{stderr}");
    // Nothing reached the modem from the second program.
    assert!(harness.sim.ussd_requests().await.is_empty());
    gateway.stop().await;
}
