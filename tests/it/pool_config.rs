//! The pool's configuration as the operator meets it: `check-config` checks `[[modems]]` and
//! `[routing]` without opening a port and prints the pool; a file it refuses names the key in
//! one line; `doctor --modem` names a modem the file does not have.

use std::path::Path;
use std::process::Output;

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

fn write(dir: &Path, name: &str, modems: &str) -> String {
    let path = dir.join(name);
    let db = dir.join("smsgate.db");
    std::fs::write(
        &path,
        format!(
            "[respond]\nchannel_id = \"c\"\napi_token = \"secret-token\"\n[store]\npath = {:?}\n{modems}",
            db.display().to_string()
        ),
    )
    .expect("write config");
    path.to_str().expect("utf-8").to_owned()
}

const POOL: &str = r#"
[[modems]]
name = "sim-a"
port = "/dev/serial/by-id/usb-absent-if02-port0"
pin = "4321"
min_interval = "4s"
jitter = "2s"
per_minute = 10
per_hour = 300
per_day = 1000
recipients_per_day = 250

[[modems]]
name = "sim-b"
port = "tcp://192.0.2.21:4001"

[routing]
failover_after = "off"
"#;

#[test]
fn check_config_prints_the_pool_without_opening_a_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "pool.toml", POOL);
    let output = smsgate(&["check-config", "-c", &config]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("2 modems (sim-a, sim-b)"), "{stdout}");
    assert!(stdout.contains("modems (2):"), "{stdout}");
    let sim_a = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("sim-a"))
        .unwrap_or_else(|| panic!("a line for sim-a: {stdout}"));
    assert!(
        sim_a.contains("/dev/serial/by-id/usb-absent-if02-port0 at 115200 baud")
            && sim_a.contains("sends at least 4s apart + up to 2s jitter")
            && sim_a.contains("≤ 10 parts a minute")
            && sim_a.contains("≤ 300 parts an hour")
            && sim_a.contains("≤ 1000 parts a day")
            && sim_a.contains("≤ 250 recipients a day"),
        "{sim_a}"
    );
    let sim_b = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("sim-b"))
        .unwrap_or_else(|| panic!("a line for sim-b: {stdout}"));
    assert!(
        sim_b.contains("tcp://192.0.2.21:4001 (ser2net, raw TCP)") && sim_b.contains("no pacing"),
        "{sim_b}"
    );
    assert!(
        stdout.contains("routing: sticky contacts; contacts never move"),
        "{stdout}"
    );
    assert!(!stdout.contains("would refuse"), "{stdout}");
    assert!(
        !stdout.contains("4321") && !stdout.contains("secret-token"),
        "{stdout}"
    );
}

#[test]
fn check_config_refuses_a_bad_pool_in_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (modems, expected) in [
        (
            "[modem]\nport = \"/dev/ttyUSB0\"\n[[modems]]\nname = \"a\"\nport = \"/dev/ttyUSB1\"\n",
            "both [modem] and [[modems]]",
        ),
        (
            "[[modems]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\n[[modems]]\nname = \"a\"\nport = \"/dev/ttyUSB1\"\n",
            "two modems are named \"a\"",
        ),
        (
            "[[modems]]\nname = \"Sim A\"\nport = \"/dev/ttyUSB0\"\n",
            "modems[0].name",
        ),
        (
            "[[modems]]\nname = \"a\"\nport = \"tcp://192.0.2.21\"\n",
            "modems.a.port",
        ),
        (
            "[[modems]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nper_hour = 0\n",
            "modems.a.per_hour = 0",
        ),
        ("[routing]\nfailover_after = \"never\"\n", "failover_after"),
    ] {
        let config = write(dir.path(), "bad.toml", modems);
        let output = smsgate(&["check-config", "-c", &config]);
        assert_eq!(output.status.code(), Some(1), "{modems}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{modems}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn doctor_modem_must_name_a_modem_of_the_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "pool.toml", POOL);
    let output = smsgate(&["doctor", "-c", &config, "--modem", "sim-z"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("no modem is named \"sim-z\"") && stderr.contains("sim-a, sim-b"),
        "{stderr}"
    );
}
