//! `smsgate status -c FILE [--retry-dead]`: what the gateway's database says — queue depths,
//! the oldest waiting items, the last errors, dead webhook events and the SMS that could not
//! be decoded (kept raw) — read straight from SQLite, so it works whether or not the daemon
//! runs. `--retry-dead` re-drives dead events.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::CmdResult;
use crate::config::Config;
use crate::store::{Store, UnreadableKind, UnreadableRow};

/// Unreadable PDUs listed in text (all of them, up to this many, with `--json`).
const UNREADABLE_SHOWN: u32 = 10;
const UNREADABLE_JSON: u32 = 100;

/// Arguments of `smsgate status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (for the database path).
    #[arg(short, long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Queue the dead webhook events again (after fixing what killed them, e.g. the token).
    #[arg(long)]
    pub retry_dead: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smsgate status`. Exit status 0, or 2 when dead events wait for attention.
pub fn run(args: Args) -> CmdResult {
    let config = Config::load(&args.config)?;
    super::runtime()?.block_on(async move {
        let store = Store::open(&config.store.path)
            .await
            .with_context(|| format!("cannot open the database {}", config.store.path.display()))?;
        let now = crate::clock::now_ms();
        if args.retry_dead {
            let requeued = store.retry_dead_events(now).await?;
            println!("re-queued {requeued} dead webhook event(s); the daemon sends them now");
        }
        let summary = store.summary().await?;
        let outbox = store.outbox_stats(now).await?;
        let webhook = store.webhook_stats(now).await?;
        let limit = if args.json {
            UNREADABLE_JSON
        } else {
            UNREADABLE_SHOWN
        };
        let (unreadable_total, unreadable) = store.unreadable(limit).await?;
        let mut balances = Vec::new();
        for modem in config.pool().iter().filter(|modem| modem.balance.is_some()) {
            let low = modem.balance.as_ref().and_then(|check| check.low);
            balances.push((modem.name.to_string(), store.balance(modem.name.as_str()).await?, low));
        }
        if args.json {
            let report = serde_json::json!({
                "outbound": summary.outbound.iter().map(|(s, n)| (s.as_str(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                "oldest_queued_age_s": outbox.oldest_queued_ms.map(|t| (now - t) / 1000),
                "last_send_error": summary.last_send_error,
                "inbound_messages": summary.inbound_messages,
                "inbound_assembling": summary.inbound_assembling,
                "inbound_kept": summary.inbound_kept,
                "webhook_pending": webhook.pending,
                "oldest_webhook_age_s": webhook.oldest_pending_ms.map(|t| (now - t) / 1000),
                "webhook_dead": webhook.dead,
                "last_webhook_error": webhook.last_error,
                "unreadable": unreadable_total,
                "unreadable_latest": unreadable,
                "balances": balances.iter().map(|(modem, stored, low)| serde_json::json!({
                    "modem": modem,
                    "amount": stored.as_ref().and_then(|b| b.amount),
                    "text": stored.as_ref().map(|b| &b.text),
                    "read_ms": stored.as_ref().map(|b| b.read_ms),
                    "low_balance": low,
                })).collect::<Vec<_>>(),
            });
            println!("{report:#}");
        } else {
            let states: Vec<String> = summary
                .outbound
                .iter()
                .map(|(state, count)| format!("{state} {count}"))
                .collect();
            println!("database   {}", config.store.path.display());
            println!(
                "outbound   {}",
                if states.is_empty() { "none".to_owned() } else { states.join(", ") }
            );
            println!(
                "queue      {} waiting, {} sending, {} unknown; oldest waiting {}",
                outbox.queued,
                outbox.sending,
                outbox.unknown,
                age(now, outbox.oldest_queued_ms)
            );
            if let Some(error) = &summary.last_send_error {
                println!("last send error   {error}");
            }
            println!(
                "inbound    {} messages, {} awaiting parts, {} kept locally (alphanumeric senders)",
                summary.inbound_messages, summary.inbound_assembling, summary.inbound_kept
            );
            println!(
                "webhook    {} pending (oldest {}), {} dead",
                webhook.pending,
                age(now, webhook.oldest_pending_ms),
                webhook.dead
            );
            if let Some(error) = &webhook.last_error {
                println!("last webhook error   {error}");
            }
            for (modem, stored, low) in &balances {
                println!("balance    {modem}: {}", balance_line(now, stored.as_ref(), *low));
            }
            print_unreadable(now, unreadable_total, &unreadable);
            if webhook.dead > 0 && !args.retry_dead {
                println!(
                    "{} event(s) are dead: fix the cause above, then run `smsgate status --retry-dead`",
                    webhook.dead
                );
            }
        }
        let dead_left = webhook.dead > 0 && !args.retry_dead;
        Ok(if dead_left { ExitCode::from(2) } else { ExitCode::SUCCESS })
    })
}

/// `3.2, below low_balance 5 ("Your balance is 3.20 USD.", read 2h ago)`.
fn balance_line(
    now_ms: i64,
    stored: Option<&crate::store::StoredBalance>,
    low: Option<f64>,
) -> String {
    let Some(stored) = stored else {
        return "not read yet (the daemon asks at start; see its log)".to_owned();
    };
    let amount = match (stored.amount, low) {
        (Some(amount), Some(low)) if amount < low => format!("{amount}, below low_balance {low}"),
        (Some(amount), _) => amount.to_string(),
        (None, _) => "no amount found (check balance_pattern)".to_owned(),
    };
    format!(
        "{amount} ({:?}, read {})",
        stored.text,
        age(now_ms, Some(stored.read_ms))
    )
}

/// The undecodable PDUs kept raw, newest first, each with the PDU to paste into
/// `smsgate pdu decode`.
fn print_unreadable(now_ms: i64, total: u64, rows: &[UnreadableRow]) {
    if total == 0 {
        println!("unreadable none");
        return;
    }
    println!(
        "unreadable {total} PDU(s) could not be decoded and were kept raw (newest first; \
         `smsgate pdu decode PDU` shows what it can):"
    );
    for row in rows {
        let what = match (row.kind, &row.sender) {
            (UnreadableKind::StatusReport, _) => "status report".to_owned(),
            (UnreadableKind::Sms, Some(sender)) => format!("SMS from {sender}"),
            (UnreadableKind::Sms, None) => "SMS, sender unreadable".to_owned(),
        };
        let forwarded = if row.forwarded {
            ", placeholder sent to respond.io"
        } else {
            ""
        };
        println!(
            "  {}  {}  {what}{forwarded}: {}",
            age(now_ms, Some(row.received_ms)),
            row.slot,
            row.reason
        );
        println!("    PDU {}", row.pdu);
    }
    if total > rows.len() as u64 {
        println!(
            "  … and {} more (`--json` lists up to {UNREADABLE_JSON})",
            total - rows.len() as u64
        );
    }
}

/// "3m 20s ago" style age of a Unix-ms instant, or "—".
fn age(now_ms: i64, at_ms: Option<i64>) -> String {
    match at_ms {
        Some(at) => {
            let secs = u64::try_from((now_ms - at).max(0) / 1000).unwrap_or(0);
            format!(
                "{} ago",
                humantime::format_duration(std::time::Duration::from_secs(secs))
            )
        }
        None => "—".to_owned(),
    }
}
