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
