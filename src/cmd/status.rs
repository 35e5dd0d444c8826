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
        let modems = modem_rows(&config, &store, now).await?;
        let live = live_modems(&config).await;
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
                "modems": modems,
                "live": live.as_ref().ok(),
                "drain_estimate_s": live.as_ref().ok().and_then(|l| l.get("drain_estimate_seconds")),
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
            print_modems(now, &modems, &live);
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

/// One SIM as the database sees it: its queue, its contacts and its use of its caps (from the
/// send history the caps count from).
#[derive(Debug, serde::Serialize)]
struct ModemRow {
    name: String,
    endpoint: String,
    queued: u64,
    contacts: u64,
    sent_last_minute: u32,
    sent_last_hour: u32,
    sent_last_day: u32,
    recipients_last_day: u32,
    per_minute: Option<u32>,
    per_hour: Option<u32>,
    per_day: Option<u32>,
    recipients_per_day: Option<u32>,
    next_send_at_ms: i64,
}

async fn modem_rows(config: &Config, store: &Store, now: i64) -> anyhow::Result<Vec<ModemRow>> {
    let queued: std::collections::HashMap<_, _> =
        store.queued_by_modem().await?.into_iter().collect();
    let contacts: std::collections::HashMap<_, _> =
        store.contacts_by_modem().await?.into_iter().collect();
    let mut rows = Vec::new();
    for entry in config.pool() {
        let name = entry.name.as_str();
        let history = store
            .send_history(name, now.saturating_sub(crate::pacing::DAY_MS))
            .await?;
        let pacer = crate::pacing::Pacer::with_log(
            entry.pacing,
            crate::pacing::SendLog::from_rows(history, now),
        );
        let usage = pacer.usage(now);
        let cap = |c: Option<std::num::NonZeroU32>| c.map(std::num::NonZeroU32::get);
        rows.push(ModemRow {
            name: name.to_owned(),
            endpoint: entry.endpoint.to_string(),
            queued: queued.get(name).copied().unwrap_or(0),
            contacts: contacts.get(name).copied().unwrap_or(0),
            sent_last_minute: usage.last_minute,
            sent_last_hour: usage.last_hour,
            sent_last_day: usage.last_day,
            recipients_last_day: usage.recipients_last_day,
            per_minute: cap(entry.pacing.per_minute),
            per_hour: cap(entry.pacing.per_hour),
            per_day: cap(entry.pacing.per_day),
            recipients_per_day: cap(entry.pacing.recipients_per_day),
            next_send_at_ms: pacer
                .next_message(now, 1, "", std::time::Duration::ZERO)
                .at_ms,
        });
    }
    Ok(rows)
}

/// The running daemon's `/health` details (each modem's health lives in the daemon, not in the
/// database), or why it could not be read.
async fn live_modems(config: &Config) -> Result<serde_json::Value, String> {
    let mut address = config.http.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("http://{address}/health"))
        .bearer_auth(config.respond.api_token.as_deref().unwrap_or_default())
        .send()
        .await
        .map_err(|_| format!("the daemon does not answer on {address}"))?;
    response.json().await.map_err(|e| e.to_string())
}

fn print_modems(now: i64, rows: &[ModemRow], live: &Result<serde_json::Value, String>) {
    let of = |used: u32, cap: Option<u32>| match cap {
        Some(cap) => format!("{used}/{cap}"),
        None => used.to_string(),
    };
    println!("modems     {}", rows.len());
    for row in rows {
        let next = if row.next_send_at_ms <= now {
            "now".to_owned()
        } else {
            format!("in {}s", (row.next_send_at_ms - now + 999) / 1000)
        };
        println!(
            "  {:<10} {} queued, {} contacts; sent {} last minute, {} last hour, {} last day, \
             {} recipients; next send {next}",
            row.name,
            row.queued,
            row.contacts,
            of(row.sent_last_minute, row.per_minute),
            of(row.sent_last_hour, row.per_hour),
            of(row.sent_last_day, row.per_day),
            of(row.recipients_last_day, row.recipients_per_day),
        );
        let modem = live.as_ref().ok().and_then(|live| {
            live["modems"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == row.name.as_str())
                .cloned()
        });
        match modem {
            Some(m) => {
                let health = &m["health"];
                println!(
                    "  {:<10} {}{}, {}, signal {}",
                    "",
                    health["state"].as_str().unwrap_or("?"),
                    if health["healthy"] == true {
                        ""
                    } else {
                        " (unhealthy)"
                    },
                    if health["registered"] == true {
                        "registered"
                    } else {
                        "not registered"
                    },
                    health["signal_dbm"]
                        .as_i64()
                        .map_or("unknown".to_owned(), |dbm| format!("{dbm} dBm")),
                );
            }
            None => println!("  {:<10} {} (live health unknown)", "", row.endpoint),
        }
    }
    match live {
        Ok(live) => {
            if let Some(drain) = live["drain_estimate_seconds"].as_f64() {
                println!("drain      about {}s to send what is queued", drain.ceil());
            }
        }
        Err(why) => println!("live       {why}: modem health unknown"),
    }
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
