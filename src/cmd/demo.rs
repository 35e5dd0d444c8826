//! `smsgate demo` (see DESIGN.md §4).

use super::CmdResult;

/// Arguments of `smsgate demo`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `smsgate demo`.
pub fn run(_args: Args) -> CmdResult {
    anyhow::bail!("`smsgate demo` is not available in this build yet")
}
