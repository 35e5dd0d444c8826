//! `smsgate sim` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate sim`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate sim`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate sim` is not available in this build yet")
}
