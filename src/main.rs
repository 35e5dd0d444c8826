//! The `smsgate` binary: parses the command line, starts logging, and hands each subcommand to
//! [`smsgate::cmd`]. Everything else lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use smsgate::cmd;

/// An SMS gateway that makes a GSM/LTE modem a respond.io Custom Channel.
#[derive(Parser)]
#[command(name = "smsgate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway daemon.
    Run(cmd::run::Args),
    /// Run the whole gateway on this machine with a simulated modem and a local respond.io stand-in.
    Demo(cmd::demo::Args),
    /// Probe the modem and print a report with the fix for anything wrong.
    Doctor(cmd::doctor::Args),
    /// Queue an SMS outside respond.io (reported to respond.io as a message echo).
    Send(cmd::send::Args),
    /// Show queue depths, the oldest items, last errors and dead webhook events.
    Status(cmd::status::Args),
    /// Validate a configuration file and exit.
    CheckConfig(cmd::check_config::Args),
    /// Decode and encode SMS PDUs.
    #[command(subcommand)]
    Pdu(cmd::pdu::Command),
    /// Run the simulated modem alone on a pseudo-terminal.
    Sim(cmd::sim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo narrates on stdout; its logs stay quiet unless asked for with RUST_LOG.
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    cmd::init_logging(default_level);
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::CheckConfig(args) => cmd::check_config::run(args),
        Command::Pdu(command) => cmd::pdu::run(command),
        Command::Sim(args) => cmd::sim::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("smsgate: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose text an outer message
/// already quotes is left out, an outer message that a cause repeats in full gives way to it,
/// and line breaks become spaces (journald shows one line per message).
fn one_line(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() || said.iter().any(|outer| outer.contains(&text)) {
            continue;
        }
        if said
            .last()
            .is_some_and(|outer| text.contains(outer.as_str()))
        {
            said.pop();
        }
        said.push(text);
    }
    said.join(": ")
}
