//! `smsgate doctor` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate doctor`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate doctor`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate doctor` is not available in this build yet")
}
