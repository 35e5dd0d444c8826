//! `smsgate check-config -c FILE`: loads and validates the configuration, warns about settings
//! respond.io is retiring, then exits.

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
    if let Some(warning) = config.respond.retired_webhook_warning() {
        println!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
