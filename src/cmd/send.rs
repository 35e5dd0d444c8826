//! `smsgate send` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate send`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate send`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate send` is not available in this build yet")
}
