//! `smsgate check-config -c FILE`: loads and validates the configuration (modem names, ports,
//! pacing and routing included), prints it and the pool, warns about settings respond.io is
//! retiring, about a database volume with less free space than `store.min_free_space` and
//! about a pool `smsgate run` would refuse, then exits. It does not open the database or the
//! modems.

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
