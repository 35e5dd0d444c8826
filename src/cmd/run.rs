//! `smsgate run [-c FILE]`: the daemon. Loads the configuration, starts the gateway and runs it
//! until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::CmdResult;
use crate::app::{Gateway, signals};
use crate::config::Config;

/// Arguments of `smsgate run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(short, long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// Runs the daemon until a signal stops it.
pub fn run(args: Args) -> CmdResult {
    let config = Config::load(&args.config)?;
    super::runtime()?.block_on(async move {
        let shutdown = CancellationToken::new();
        signals::cancel_on_signals(shutdown.clone()).context("cannot install signal handlers")?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            "smsgate starting: {}",
            config.summary()
        );
        let gateway = Gateway::start(config, shutdown).await?;
        gateway.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}
