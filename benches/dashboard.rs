//! What one refresh of the dashboard costs: the page asks `/api/modems`, `/api/queues`,
//! `/api/messages` and `/api/chart` every 3 seconds, and on a Pi that must stay cheap while the
//! database holds a month of traffic.
//!
//! A real SQLite file (WAL) is filled with `--days` days (30) of `--per-day` messages (700) each
//! way, one part each, their receipts as delivered webhook events, and 20 dead events; then
//! the dashboard runs on it as the daemon runs it, and each endpoint is asked `--rounds`
//! times (50) in turn, then as the page asks them (the four at once). Reported: the median and
//! the 90th percentile per endpoint and per refresh, and the share of one core a page open
//! all day would take.
//!
//! Run: `cargo bench --bench dashboard` (`-- --days 30 --per-day 700 --rounds 50`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsgate::admin::Dashboard;
use smsgate::config::Config;
use smsgate::store::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills the database directly (one transaction), as a month of traffic would have left it.
fn fill(path: &std::path::Path, days: u64, per_day: u64, now_ms: i64) -> rusqlite::Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    let total = days * per_day;
    let step = (days as i64 * DAY_MS) / total.max(1) as i64;
    for n in 0..total as i64 {
        let at = now_ms - days as i64 * DAY_MS + n * step;
        let contact = format!("+6012{:07}", n % 5000);
        let m_id = format!("{at}-{n}-bench");
        let state = if n % 50 == 0 { "failed" } else { "delivered" };
        tx.execute(
            "INSERT INTO outbound (m_id, contact_id, text, parts, encoding, source, state,
                 attempts, next_attempt_ms, created_ms, updated_ms, finished_ms, status_message)
             VALUES (?1, ?2, 'a message of ordinary length for the benchmark', 1, 'gsm7',
                 'respond', ?3, 1, ?4, ?4, ?5, ?5, CASE WHEN ?3 = 'failed' THEN
                 'not delivered: the recipient was busy (TP-ST 0x61)' END)",
            rusqlite::params![m_id, contact, state, at, at + 4000],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO outbound_part (message_id, seq, state, recipient, mr, submitted_ms,
                 report_status, report_ms) VALUES (?1, 1, ?2, ?3, ?4, ?5, 0, ?6)",
            rusqlite::params![id, state, contact, n % 256, at + 2000, at + 4000],
        )?;
        tx.execute(
            "INSERT INTO inbound (m_id, contact_id, forward, total, state, text, timestamp_ms,
                 first_part_ms, finished_ms) VALUES (?1, ?2, 1, 1, 'complete', 'a reply', ?3,
                 ?3, ?3)",
            rusqlite::params![format!("in-{n}"), contact, at + 60_000],
        )?;
        let message = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO inbound_part (part_key, message_id, seq, text, timestamp_ms, pdu,
                 received_ms) VALUES (?1, ?2, 1, 'a reply', ?3, x'00', ?3)",
            rusqlite::params![format!("in-{n}"), message, at + 60_000],
        )?;
        for value in ["sent", "delivered"] {
            let dead = n >= total as i64 - 10;
            tx.execute(
                "INSERT INTO event (contact_id, body, state, next_attempt_ms, created_ms,
                     enqueued_ms, finished_ms, lane, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?4, ?4, 2, ?5)",
                rusqlite::params![
                    contact,
                    format!(
                        r#"{{"type":"message_status","mId":"{m_id}","timestamp":{at},"status":{{"value":"{value}"}}}}"#
                    ),
                    if dead { "dead" } else { "delivered" },
                    at,
                    dead.then_some("respond.io rejected the events (HTTP 400: bad payload)"),
                ],
            )?;
        }
    }
    tx.commit()?;
    Ok(total)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let days = arg("--days", 30);
    let per_day = arg("--per-day", 700);
    let rounds = arg("--rounds", 50) as usize;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("smsgate.db");
        drop(Store::open(&path).await?);
        let now = chrono::Utc::now().timestamp_millis();
        let filled = Instant::now();
        let total = fill(&path, days, per_day, now)?;
        println!(
            "database: {total} messages each way over {days} days, filled in {:.1?}",
            filled.elapsed()
        );
        let store = Store::open(&path).await?;
        // The chart's query itself: the endpoint caches its answer for 15 s.
        let mut chart = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            store.console_hourly(now, 24).await?;
            chart.push(started.elapsed());
        }
        println!(
            "the chart's query (uncached, every 15 s at most): median {:.2?}, p90 {:.2?}",
            percentile(&mut chart, 0.5),
            percentile(&mut chart, 0.9)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = Config::parse(&format!(
            "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n"
        ))?;
        let (_health_tx, health) = watch::channel(smsgate::modem::Health {
            healthy: true,
            ..Default::default()
        });
        let dashboard = Dashboard::from_config(&config, store, health, Arc::default())?
            .ok_or_else(|| anyhow::anyhow!("the dashboard is off"))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(dashboard.run(shutdown.clone()));
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/api/session")).send().await.is_err() {
            anyhow::ensure!(Instant::now() < until, "the dashboard does not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let endpoints = ["/api/modems", "/api/queues", "/api/messages", "/api/messages?q=601200", "/api/chart"];
        println!("\n{:<28} {:>10} {:>10}", "endpoint", "median", "p90");
        for endpoint in endpoints {
            let mut times = Vec::with_capacity(rounds);
            for round in 0..rounds + 3 {
                let started = Instant::now();
                let response = client.get(format!("{base}{endpoint}")).send().await?;
                anyhow::ensure!(response.status().is_success(), "{endpoint}: {}", response.status());
                response.bytes().await?;
                // The first rounds warm the page cache; the chart's own cache is 15 s.
                if round >= 3 {
                    times.push(started.elapsed());
                }
            }
            let median = percentile(&mut times, 0.5);
            let p90 = percentile(&mut times, 0.9);
            println!("{endpoint:<28} {median:>10.2?} {p90:>10.2?}");
        }
        let mut refreshes = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let get = |path: &str| {
                let request = client.get(format!("{base}{path}")).send();
                async move { request.await?.bytes().await }
            };
            let (a, b, c, d) = tokio::join!(
                get("/api/modems"),
                get("/api/queues"),
                get("/api/messages"),
                get("/api/chart")
            );
            a?;
            b?;
            c?;
            d?;
            refreshes.push(started.elapsed());
        }
        let median = percentile(&mut refreshes, 0.5);
        println!(
            "\none refresh (the four at once): median {median:.2?}, p90 {:.2?}; every 3 s that is \
             at most {:.1}% of the time",
            percentile(&mut refreshes, 0.9),
            median.as_secs_f64() / 3.0 * 100.0
        );
        shutdown.cancel();
        Ok(())
    })
}
