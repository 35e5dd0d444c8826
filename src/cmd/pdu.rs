//! `smsgate pdu decode|encode`: the codec on the command line.

use super::CmdResult;

/// `smsgate pdu` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Decode a PDU given in hex.
    Decode { hex: String },
}

/// Runs `smsgate pdu …`.
pub fn run(_command: Command) -> CmdResult {
    anyhow::bail!("`smsgate pdu` is not available in this build yet")
}
