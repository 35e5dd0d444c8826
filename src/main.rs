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
    /// Ask the network a USSD code (such as a balance) and print the answer.
    Ussd(cmd::ussd::Args),
    /// Decode and encode SMS PDUs.
    #[command(subcommand)]
    Pdu(cmd::pdu::Command),
    /// Run the simulated modem alone on a pseudo-terminal.
    Sim(Box<cmd::sim::Args>),
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
        Command::Ussd(args) => cmd::ussd::run(args),
        Command::Pdu(command) => cmd::pdu::run(command),
        Command::Sim(args) => cmd::sim::run(*args),
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
/// already quotes (in any case, and without SQLite's "Error code N: " prefix: SQLite says the
/// same thing twice, once capitalised) is left out, an outer message that a cause repeats in
/// full gives way to it, and line breaks become spaces (journald shows one line per message).
fn one_line(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let lower = text.to_lowercase();
        let gist = match lower.split_once(": ") {
            Some((code, rest)) if code.starts_with("error code ") => rest,
            _ => lower.as_str(),
        };
        if gist.is_empty() || said.iter().any(|outer| outer.to_lowercase().contains(gist)) {
            continue;
        }
        if said
            .last()
            .is_some_and(|outer| lower.contains(&outer.to_lowercase()))
        {
            said.pop();
        }
        said.push(text);
    }
    said.join(": ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let error = anyhow::Error::new(io).context("cannot read x.toml: No such file");
        assert_eq!(one_line(&error), "cannot read x.toml: No such file");
        let error = anyhow::anyhow!("Error code 8: Attempt to write a readonly database")
            .context("attempt to write a readonly database")
            .context("the outbox failed");
        assert_eq!(
            one_line(&error),
            "the outbox failed: attempt to write a readonly database"
        );
        let error = anyhow::anyhow!("cannot open the database p: it is a directory")
            .context("cannot open the database p");
        assert_eq!(
            one_line(&error),
            "cannot open the database p: it is a directory"
        );
        let error = anyhow::anyhow!("line one\n  line two").context("outer");
        assert_eq!(one_line(&error), "outer: line one line two");
    }
}
