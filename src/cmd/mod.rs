//! One module per `smsgate` subcommand. Each exposes `Args` (parsed by clap in `main.rs`) and
//! `run(Args) -> anyhow::Result<ExitCode>`. Commands that need async code build their own tokio
//! runtime with [`runtime`]; the codec commands stay synchronous.

use std::process::ExitCode;

pub mod check_config;
pub mod demo;
pub mod doctor;
pub mod pdu;
pub mod run;
pub mod send;
pub mod sim;
pub mod status;
pub mod ussd;

/// The result every subcommand returns: an exit code, or an error printed as one line.
pub type CmdResult = anyhow::Result<ExitCode>;

/// What a command needs of the pool beyond one modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `doctor`: probe the modem (pacing does not matter).
    Probe,
    /// `run`: drive the modem and send (pacing must be applied).
    Drive,
}

/// What the daemon and `doctor` cannot do yet with a valid configuration: drive more than one
/// modem, reach one over `tcp://`, or pace its sends. Such a file is refused with the fix
/// rather than run with part of it ignored (idle SIMs, caps that do not hold, a `tcp://` URL
/// opened as a file). `None` when the configuration is within reach.
pub fn beyond_one_modem(config: &crate::config::Config, needs: Needs) -> Option<String> {
    let pool = config.pool();
    if let [_, _, ..] = pool {
        let names: Vec<&str> = pool.iter().map(|modem| modem.name.as_str()).collect();
        return Some(format!(
            "the configuration lists {} modems ({}), and this version of smsgate drives one: \
             keep one [[modems]] entry (or a [modem] section)",
            pool.len(),
            names.join(", ")
        ));
    }
    let modem = &pool[0];
    if modem.endpoint.is_remote() {
        return Some(format!(
            "modem {:?} is at {}, and this version of smsgate drives modems on a local serial \
             port only: run smsgate on the machine the modem is plugged into (stop ser2net there)",
            modem.name.as_str(),
            modem.endpoint
        ));
    }
    if needs == Needs::Drive && !modem.pacing.is_unlimited() {
        return Some(format!(
            "modem {:?} has pacing ({}), and this version of smsgate does not apply it: remove \
             min_interval, jitter, per_minute, per_hour, per_day and recipients_per_day, or the \
             SIM would send faster than they say",
            modem.name.as_str(),
            crate::config::describe_pacing(&modem.pacing)
        ));
    }
    None
}

/// Starts `tracing` with a `RUST_LOG` filter (default `default_level`), plain lines on stderr.
///
/// Under systemd (`JOURNAL_STREAM` is set) the timestamp is left out: journald adds its own.
pub fn init_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).try_init()
    } else {
        builder.try_init()
    };
    // A second initialisation (tests calling commands in process) is harmless.
    drop(result);
}

/// A multi-threaded tokio runtime for the async subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Two workers are plenty for one modem and respond.io's 20 requests per second, and each
    // extra thread costs resident memory on a Pi; blocking threads (SQLite runs on its own) are
    // capped for the same reason.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .thread_name("smsgate")
        .build()?)
}
