//! `smsgate run` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate run`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate run`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate run` is not available in this build yet")
}
