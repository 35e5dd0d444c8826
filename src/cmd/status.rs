//! `smsgate status` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate status`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate status`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate status` is not available in this build yet")
}
