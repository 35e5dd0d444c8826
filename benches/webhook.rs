//! Webhooks at respond.io's real distance, measured from outside: the real `smsgate run` binary
//! (bench profile, i.e. release) on the simulated modem's pty, a real SQLite file, and a local
//! respond.io stand-in that answers each request only after a delay (0.3 s, a Pi's round trip
//! to respond.io; then 1.0 s).
//!
//! Each run: a 150-message broadcast is posted to `POST /message` (ten clients at once), the
//! simulator sends it and reports every message delivered, so 300 receipts queue up; one second
//! after the broadcast was accepted, five other contacts reply, one a second, while the backlog
//! drains. Reported per run and as the median of the runs:
//! - webhook requests per second while the backlog lasts (from the first request to the last,
//!   when every receipt and reply has arrived), and the most requests that arrived in any one
//!   second. Targets at 0.3 s: ≥ 18 req/s, never more than 20 in a second.
//! - reply latency, SMS into the modem → its request arriving at the stand-in: p50 and max.
//!   Targets: p50 < 0.5 s, max < 1.5 s.
//!
//! Run: `cargo bench --bench webhook` (options: `--runs 3`, `--delays 0.3,1.0`, `--messages 150`,
//! `--replies 5`, and `--respond 'max_in_flight = 1'` for extra `[respond]` keys). The bench
//! has its own stand-in and uses only the daemon binary, the simulator and the HTTP API, so it
//! also runs unchanged against older versions of smsgate for a before/after comparison.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use smsgate::sim::SimOptions;

const CHANNEL: &str = "bench-channel";
const TOKEN: &str = "bench-token";
const DEADLINE: Duration = Duration::from_secs(300);

struct Options {
    runs: usize,
    delays: Vec<f64>,
    messages: usize,
    replies: usize,
    respond: String,
}

fn options() -> Options {
    let mut options = Options {
        runs: 3,
        delays: vec![0.3, 1.0],
        messages: 150,
        replies: 5,
        respond: String::new(),
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--runs" => options.runs = pair[1].parse().unwrap_or(options.runs),
            "--messages" => options.messages = pair[1].parse().unwrap_or(options.messages),
            "--replies" => options.replies = pair[1].parse().unwrap_or(options.replies),
            "--respond" => options.respond = pair[1].replace("\\n", "\n"),
            "--delays" => {
                options.delays = pair[1]
                    .split(',')
                    .filter_map(|d| d.trim().parse().ok())
                    .collect();
            }
            _ => {}
        }
    }
    options
}

/// One request as the stand-in saw it.
#[derive(Clone)]
struct Seen {
    at: Instant,
    events: Vec<Value>,
}

#[derive(Clone)]
struct StandIn {
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn receive(State(standin): State<StandIn>, body: Bytes) -> &'static str {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let events = body["events"].as_array().cloned().unwrap_or_default();
    standin
        .seen
        .lock()
        .expect("seen lock")
        .push(Seen { at, events });
    tokio::time::sleep(standin.delay).await;
    "OK"
}

async fn start_standin(delay: Duration) -> (StandIn, String) {
    let standin = StandIn {
        delay,
        seen: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind the stand-in");
    let address = listener.local_addr().expect("address");
    let app = Router::new()
        .route("/custom/channel/webhook/", post(receive))
        .with_state(standin.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (standin, format!("http://{address}/custom/channel/webhook/"))
}

/// What one run measured.
struct Run {
    requests: usize,
    backlog: Duration,
    per_second: f64,
    busiest_second: usize,
    most_pending: u64,
    latencies: Vec<Duration>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    println!(
        "webhook bench: {} messages, {} replies, {} runs per answer time{}",
        options.messages,
        options.replies,
        options.runs,
        if options.respond.is_empty() {
            String::new()
        } else {
            format!(", [respond] {}", options.respond.replace('\n', "; "))
        }
    );
    for &delay in &options.delays {
        let mut runs = Vec::new();
        for n in 0..options.runs {
            let run = one_run(&options, Duration::from_secs_f64(delay)).await;
            let mut sorted = run.latencies.clone();
            sorted.sort();
            println!(
                "  answer {delay:.1} s, run {}: {} requests in {:.1} s = {:.1} req/s, busiest \
                 second {}, most pending {}; reply latency p50 {:.2} s, max {:.2} s",
                n + 1,
                run.requests,
                run.backlog.as_secs_f64(),
                run.per_second,
                run.busiest_second,
                run.most_pending,
                secs(percentile(&sorted, 50)),
                secs(*sorted.last().expect("replies")),
            );
            runs.push(run);
        }
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!(
            "answer {delay:.1} s, median of {}: {:.1} req/s during the backlog, busiest second \
             {} (max over runs {}), reply latency p50 {:.2} s, max {:.2} s",
            runs.len(),
            median(runs.iter().map(|r| r.per_second).collect()),
            median(runs.iter().map(|r| r.busiest_second as f64).collect()),
            runs.iter().map(|r| r.busiest_second).max().unwrap_or(0),
            median(
                runs.iter()
                    .map(|r| {
                        let mut sorted = r.latencies.clone();
                        sorted.sort();
                        secs(percentile(&sorted, 50))
                    })
                    .collect()
            ),
            median(
                runs.iter()
                    .map(|r| secs(*r.latencies.iter().max().expect("replies")))
                    .collect()
            ),
        );
    }
}

async fn one_run(options: &Options, delay: Duration) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = smsgate::sim::spawn(SimOptions {
        link: Some(dir.path().join("modem")),
        baud: Some(115_200),
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let (standin, url) = start_standin(delay).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[respond]\nchannel_id = \"{CHANNEL}\"\napi_token = \"{TOKEN}\"\nwebhook_url = \"{url}\"\n\
             {}\n[http]\nlisten = \"127.0.0.1:{port}\"\nmax_queue_depth = 1000000\n\
             [modem]\nport = {:?}\n[store]\npath = {:?}\n[sms]\ndefault_country = \"MY\"\n",
            options.respond,
            sim.path().display().to_string(),
            dir.path().join("smsgate.db").display().to_string(),
        ),
    )
    .expect("config");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .env_remove("SMSGATE_API_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("smsgate starts");
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let client = reqwest::Client::new();
    wait_for_modem(&client, address).await;

    // The broadcast, ten clients at once.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut posting = Vec::new();
    for _ in 0..10 {
        let (client, next, messages) = (client.clone(), next.clone(), options.messages);
        posting.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= messages {
                    return;
                }
                let body = json!({
                    "channelId": CHANNEL,
                    "contactId": format!("+6012{n:07}"),
                    "message": {"type": "text", "text": format!("Broadcast: our shop opens at 9 ({n})")},
                });
                let response = client
                    .post(format!("http://{address}/message"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .expect("POST /message is answered");
                assert!(response.status().is_success(), "message {n} refused");
            }
        }));
    }
    for task in posting {
        task.await.expect("poster");
    }

    // The pending gauge, sampled while the run lasts (did a backlog form at all?).
    let most_pending = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = tokio::spawn(sample_pending(
        client.clone(),
        address,
        most_pending.clone(),
    ));

    // Five replies from other contacts, one a second, during the backlog.
    let mut injected = Vec::new();
    for r in 0..options.replies {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let text = format!("reply {r}: what time do you open?");
        let at = Instant::now();
        sim.inject_sms(&format!("+6019{r:07}"), &text)
            .await
            .expect("inject a reply");
        injected.push((text, at));
    }

    // Until every receipt and every reply has arrived.
    let receipts = options.messages * 2;
    let started = Instant::now();
    loop {
        let seen = standin.seen.lock().expect("seen lock").clone();
        let statuses = seen
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| e["type"] == "message_status")
            .count();
        let replies = injected
            .iter()
            .filter(|(text, _)| arrival(&seen, text).is_some())
            .count();
        if statuses >= receipts && replies == injected.len() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "only {statuses} receipts and {replies} replies arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sampling.abort();
    let seen = standin.seen.lock().expect("seen lock").clone();
    let latencies = injected
        .iter()
        .map(|(text, at)| {
            arrival(&seen, text)
                .expect("arrived")
                .saturating_duration_since(*at)
        })
        .collect();
    let times: Vec<Instant> = seen.iter().map(|s| s.at).collect();
    let backlog = times[times.len() - 1].duration_since(times[0]);
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    sim.shutdown().await;
    Run {
        requests: seen.len(),
        backlog,
        per_second: (seen.len() - 1) as f64 / backlog.as_secs_f64(),
        busiest_second: busiest_second(&times),
        most_pending: most_pending.load(std::sync::atomic::Ordering::Relaxed),
        latencies,
    }
}

/// When the request carrying the `message` with `text` arrived.
fn arrival(seen: &[Seen], text: &str) -> Option<Instant> {
    seen.iter()
        .find(|s| s.events.iter().any(|e| e["message"]["text"] == text))
        .map(|s| s.at)
}

/// The most arrivals within one second of each other.
fn busiest_second(times: &[Instant]) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn sample_pending(
    client: reqwest::Client,
    address: SocketAddr,
    most: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        if let Ok(response) = client
            .get(format!("http://{address}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            if let Ok(text) = response.text().await {
                let pending = text
                    .lines()
                    .find_map(|line| line.strip_prefix("smsgate_webhook_pending_events "))
                    .and_then(|value| value.trim().parse::<f64>().ok())
                    .unwrap_or(0.0);
                most.fetch_max(pending as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `/health` says the modem is registered (the daemon started and initialised it).
async fn wait_for_modem(client: &reqwest::Client, address: SocketAddr) {
    let started = Instant::now();
    loop {
        if let Ok(response) = client
            .get(format!("http://{address}/health"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            if let Ok(body) = response.json::<Value>().await {
                if body.to_string().contains("\"registered\":true") {
                    return;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
