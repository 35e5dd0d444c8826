//! `smsgate send -c FILE --to +NUMBER TEXT`: queues an SMS outside respond.io.
//!
//! The message goes into the same SQLite outbox the daemon sends from (WAL lets both processes
//! use the database at once), so it is sent by the running daemon, in order with respond.io's
//! messages, and reported to respond.io as a `message_echo` so agents see the whole
//! conversation. Nothing is sent if no daemon runs; the message waits in the outbox.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::CmdResult;
use crate::config::Config;
use crate::phone::E164;
use crate::store::{NewOutbound, Source, Store};

/// Arguments of `smsgate send`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (for the database path and the SMS settings).
    #[arg(short, long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The recipient, in E.164 form (`+` and the country code).
    #[arg(long)]
    pub to: String,
    /// The text to send.
    pub text: String,
}

/// Runs `smsgate send`.
pub fn run(args: Args) -> CmdResult {
    let config = Config::load(&args.config)?;
    let to = E164::parse(&args.to).map_err(|error| anyhow::anyhow!("--to {}: {error}", args.to))?;
    if args.text.is_empty() {
        bail!("the text is empty");
    }
    let plan = crate::pdu::plan(&args.text, config.sms.smart_encoding, false);
    if plan.parts > config.sms.max_parts {
        bail!(
            "the text needs {} SMS parts; sms.max_parts allows {}",
            plan.parts,
            config.sms.max_parts
        );
    }
    super::runtime()?.block_on(async move {
        let store = Store::open(&config.store.path)
            .await
            .with_context(|| format!("cannot open the database {}", config.store.path.display()))?;
        let m_id = store
            .enqueue_outbound(NewOutbound {
                contact_id: to.to_string(),
                text: plan.text,
                parts: plan.parts,
                encoding: plan.encoding,
                source: Source::Cli,
                quick_replies: None,
                now_ms: crate::clock::now_ms(),
            })
            .await
            .context("cannot queue the message")?;
        println!(
            "queued {m_id}: {} part(s) to {}",
            plan.parts,
            crate::phone::mask(to.as_str())
        );
        Ok(ExitCode::SUCCESS)
    })
}
