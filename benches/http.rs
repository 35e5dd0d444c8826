//! `POST /message` throughput and latency against a real SQLite file (WAL, `synchronous=FULL`):
//! every `200` is a durable commit.
//!
//! Two loads, each reported as accepted requests per second and p50 / p99 / max latency:
//! - 64 concurrent clients sending back to back (target: ≥ 2,000/s, p99 < 20 ms);
//! - respond.io's own pace, 20 requests per second from one client (target: p99 < 5 ms).
//!
//! Then the other direction's last leg: an event committed to the store's webhook queue →
//! its request arriving at a local respond.io stand-in, at 10 events per second.
//!
//! Run: `cargo bench --bench http` (optionally `-- --seconds 10 --clients 64 --direct`;
//! `--direct` adds the same load committed straight into the store, without HTTP). The database
//! goes to a temporary directory under `$TMPDIR` (put it on the disk you want to measure).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::http::{self, AppState, ModemSnapshot, Settings};
use smsgate::respond::WebhookMetrics;
use smsgate::store::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "bench-channel";
const TOKEN: &str = "bench-token";

struct Options {
    seconds: u64,
    clients: usize,
    /// Also commit straight into the store, without HTTP, to separate the two costs.
    direct: bool,
    /// How long the outbox depth read for the 429 check is reused.
    stats_ttl: Duration,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 5,
        clients: 64,
        direct: false,
        stats_ttl: Duration::from_millis(250),
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse().ok());
        match (args[i].as_str(), value) {
            ("--seconds", Some(v)) => {
                options.seconds = v;
                i += 1;
            }
            ("--clients", Some(v)) => {
                options.clients = v as usize;
                i += 1;
            }
            ("--direct", _) => options.direct = true,
            ("--stats-ttl-ms", Some(v)) => {
                options.stats_ttl = Duration::from_millis(v);
                i += 1;
            }
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
        i += 1;
    }
    options
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration, refused: usize) {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: {} accepted in {:.2} s = {:.0}/s; refused {refused}; latency p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}

async fn post(client: &reqwest::Client, url: &str, n: usize) -> (bool, Duration) {
    let body = json!({
        "channelId": CHANNEL,
        "contactId": format!("+6017{:07}", n % 10_000_000),
        "message": {"type": "text", "text": format!("Your order {n} is ready for pick-up.")},
    });
    let started = Instant::now();
    let ok = match client.post(url).bearer_auth(TOKEN).json(&body).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            ok
        }
        Err(_) => false,
    };
    (ok, started.elapsed())
}

#[tokio::main]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bench.db");
    let store = Store::open(&path).await.expect("open the database");
    let (_modem, modem_rx) = watch::channel(ModemSnapshot {
        state: smsgate::modem::ModemState::Ready,
        healthy: true,
        sim_ready: true,
        registered: true,
        ..ModemSnapshot::default()
    });
    let settings = Settings {
        channel_id: CHANNEL.into(),
        api_token: TOKEN.into(),
        body_limit: 64 * 1024,
        request_timeout: Duration::from_secs(10),
        max_queue_depth: u64::MAX,
        max_queue_age: Duration::from_secs(365 * 24 * 3600),
        max_parts: 10,
        smart_encoding: true,
        health_outbox_age: Duration::from_secs(3600),
        health_webhook_age: Duration::from_secs(3600),
        queue_stats_ttl: options.stats_ttl,
    };
    let state = AppState::new(
        settings,
        Arc::new(store.clone()),
        Arc::new(modem_rx),
        Arc::new(WebhookMetrics::default()),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!("http://{}/message", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, http::router(state), shutdown.clone()));
    println!(
        "POST /message → SQLite file {} (WAL, synchronous=FULL)",
        path.display()
    );

    // Load 1: many clients back to back.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()
        .expect("client");
    for n in 0..50 {
        post(&client, &url, n).await; // warm up connections and caches
    }
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..options.clients {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refused = 0;
            let mut n = worker * 1_000_000;
            while Instant::now() < deadline {
                let (ok, latency) = post(&client, &url, n).await;
                n += 1;
                if ok {
                    latencies.push(latency);
                } else {
                    refused += 1;
                }
            }
            (latencies, refused)
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (mut l, r) = task.await.expect("client task");
        latencies.append(&mut l);
        refused += r;
    }
    report(
        &format!("{} concurrent clients", options.clients),
        latencies,
        started.elapsed(),
        refused,
    );

    // Load 2: respond.io's pace, 20 requests per second.
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut refused = 0;
    for n in 0..(options.seconds as usize * 20) {
        ticker.tick().await;
        let (ok, latency) = post(&client, &url, 90_000_000 + n).await;
        if ok {
            latencies.push(latency);
        } else {
            refused += 1;
        }
    }
    report("20 requests/s", latencies, started.elapsed(), refused);

    if options.direct {
        direct(&store, &options).await;
    }
    webhook_latency(&store, &options).await;

    shutdown.cancel();
    let _ = server.await;
}

/// The first load again, but each client calls the store itself: what HTTP adds is the
/// difference.
async fn direct(store: &Store, options: &Options) {
    use smsgate::http::Backend;
    use smsgate::store::{NewOutbound, Source};
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..options.clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker * 1_000_000;
            while Instant::now() < deadline {
                let message = NewOutbound {
                    contact_id: format!("+6017{:07}", n % 10_000_000),
                    text: format!("Your order {n} is ready for pick-up."),
                    parts: 1,
                    encoding: smsgate::pdu::Encoding::Gsm7,
                    source: Source::Respond,
                    quick_replies: None,
                    now_ms: chrono::Utc::now().timestamp_millis(),
                };
                let begun = Instant::now();
                if Backend::enqueue(&store, message).await.is_ok() {
                    latencies.push(begun.elapsed());
                }
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.append(&mut task.await.expect("client task"));
    }
    report(
        &format!("{} concurrent store clients, no HTTP", options.clients),
        latencies,
        started.elapsed(),
        0,
    );
}

/// Event committed → webhook request received, through the real worker (notify wake-up, rate
/// limiter, reqwest, loopback).
async fn webhook_latency(store: &Store, options: &Options) {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::routing::post;
    use smsgate::respond::{ClientOptions, RateLimiter, WebhookClient, Worker, WorkerOptions};

    type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;
    let arrivals: Arrivals = Arc::default();
    let recorded = Arc::clone(&arrivals);
    let stand_in = axum::Router::new().route(
        "/webhook/",
        post(move |body: axum::Json<serde_json::Value>| {
            let recorded = Arc::clone(&recorded);
            async move {
                let now = Instant::now();
                if let Some(events) = body["events"].as_array() {
                    let mut recorded = recorded.lock().expect("arrivals lock");
                    for event in events {
                        if let Some(m_id) = event["mId"].as_str() {
                            recorded.insert(m_id.to_owned(), now);
                        }
                    }
                }
                "OK"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind the stand-in");
    let url = format!(
        "http://{}/webhook/",
        listener.local_addr().expect("address")
    );
    tokio::spawn(async move { axum::serve(listener, stand_in).await });

    let client = WebhookClient::new(&ClientOptions {
        webhook_url: url,
        channel_id: CHANNEL.into(),
        api_token: TOKEN.into(),
        request_timeout: Duration::from_secs(5),
    })
    .expect("webhook client");
    let worker = Worker::new(
        store.clone(),
        client,
        Arc::new(RateLimiter::new(20, 1)),
        WorkerOptions::default(),
    )
    .with_notify(store.event_signal());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    let count = options.seconds as usize * 10;
    let mut sent = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    for n in 0..count {
        ticker.tick().await;
        let m_id = format!("bench-in-{n}");
        let event = json!({"type": "message", "mId": m_id, "timestamp": 0,
                           "message": {"type": "text", "text": "hi"}});
        let started = Instant::now();
        store
            .enqueue_event(
                &format!("+6019{n:07}"),
                serde_json::from_value(event).expect("an event"),
                chrono::Utc::now().timestamp_millis(),
            )
            .await
            .expect("enqueue an event");
        sent.push((m_id, started));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals.lock().expect("arrivals lock").len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    let _ = running.await;
    let arrivals = arrivals.lock().expect("arrivals lock");
    let latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(m_id, started)| arrivals.get(m_id).map(|at| at.duration_since(*started)))
        .collect();
    let missing = count - latencies.len();
    let elapsed = Duration::from_secs(options.seconds);
    report(
        "event committed → webhook received, 10/s",
        latencies,
        elapsed,
        missing,
    );
}
