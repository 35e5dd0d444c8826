//! The balance and calls keys as the operator meets them in `check-config`: what each modem's
//! balance check and the call policy will do, and a bad key refused with its modem's name.

use std::process::Output;

fn check_config(text: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("smsgate.toml");
    std::fs::write(
        &path,
        format!("[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n{text}"),
    )
    .expect("write");
    std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .expect("check-config runs")
}

#[test]
fn check_config_says_what_the_balance_check_and_the_calls_do() {
    let output = check_config(
        "[modem]\nbalance_ussd = \"*124#\"\nbalance_interval = \"6h\"\n\
         balance_pattern = 'Baki RM([0-9.,]+)'\nlow_balance = 3\n\
         [calls]\nhangup = true\nauto_reply = \"SMS only, please\"\n",
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "balance of modem: *124# every 6h, the amount by \"Baki RM([0-9.,]+)\", /health \
             degraded below 3"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "calls: each becomes \"Missed call\" in respond.io; rejected at once; auto-reply at \
             most once per caller per hour"
        ),
        "{stdout}"
    );
}

#[test]
fn a_bad_balance_key_is_refused_with_its_modem_named() {
    let output = check_config(
        "[[modems]]\nname = \"sim-a\"\nport = \"/dev/ttyUSB0\"\n\
         [[modems]]\nname = \"sim-b\"\nport = \"/dev/ttyUSB1\"\nbalance_ussd = \"*100#\"\n\
         balance_pattern = \"balance\"\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("modems.sim-b.balance_pattern needs a group"),
        "{stderr}"
    );
    let output = check_config("[calls]\nauto_reply = \" \"\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("calls.auto_reply is empty"));
}
