//! `smsgate check-config -c FILE`: loads and validates the configuration (modem names, ports,
//! pacing and routing included), prints it, the pool, each modem's balance check and the call
//! policy, warns about settings respond.io is retiring, about a database volume with less free
//! space than `store.min_free_space` and about a pool `smsgate run` would refuse, then exits.
//! It does not open the database or the modems.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CmdResult;
use crate::config::Config;

/// Arguments of `smsgate check-config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(short, long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// Runs `smsgate check-config`: prints a summary (no secrets) and exits 0 when the file is valid.
/// A setting that works today but will not for long (the retired webhook host) is a warning:
/// printed with its fix, without failing the check.
pub fn run(args: Args) -> CmdResult {
    let config = Config::load(&args.config)?;
    println!("{}: ok", args.config.display());
    println!("{}", config.summary());
    println!(
        "modems ({}):\n{}",
        config.pool().len(),
        config.pool_summary().trim_end()
    );
    for modem in config.pool() {
        if let Some(check) = &modem.balance {
            println!("balance of {}: {}", modem.name, describe_balance(check));
        }
    }
    println!("calls: {}", describe_calls(&config.calls));
    if let Some(warning) = config.respond.retired_webhook_warning() {
        println!("warning: {warning}");
    }
    let floor = config.store.min_free_space;
    if let Some(free) = crate::store::free_bytes(&config.store.path) {
        if free < floor {
            let status = crate::store::StoreStatus {
                free_bytes: Some(free),
                min_free_bytes: floor,
                ..crate::store::StoreStatus::default()
            };
            println!(
                "warning: {}: smsgate would answer POST /message with 507 until space is freed",
                crate::store::space_text(&status)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `*100# every 12h, the first number in the answer, low below 5`.
fn describe_balance(check: &crate::config::BalanceCheck) -> String {
    let amount = match &check.pattern {
        Some(pattern) => format!("the amount by {:?}", pattern.as_str()),
        None => "the first number in the answer".to_owned(),
    };
    let low = match check.low {
        Some(low) => format!(", /health degraded below {low}"),
        None => String::new(),
    };
    format!(
        "{} every {}, {amount}{low}",
        check.code,
        humantime::format_duration(check.interval)
    )
}

/// `each becomes "Missed call" in respond.io; hung up; auto-reply once an hour`.
fn describe_calls(calls: &crate::config::CallsConfig) -> String {
    let mut parts = vec![if calls.notify {
        format!("each becomes {:?} in respond.io", calls.text)
    } else {
        "not sent to respond.io".to_owned()
    }];
    if calls.hangup {
        parts.push("rejected at once".to_owned());
    }
    if calls.auto_reply.is_some() {
        parts.push("auto-reply at most once per caller per hour".to_owned());
    }
    parts.join("; ")
}
