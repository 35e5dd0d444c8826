//! The whole gateway, measured from outside: the real `smsgate run` binary (built with the bench
//! profile, i.e. release) on the simulated modem's pty, a real SQLite file, and a local
//! respond.io stand-in.
//!
//! 1. Inbound latency: an SMS injected into the simulated modem (which announces it with
//!    `+CMTI`, as a real modem does) → the webhook request arriving at the stand-in. The
//!    gateway reads it with `AT+CMGR`, commits it, and posts it. Target: p50 < 20 ms. Probes
//!    are 100 ms apart so that the webhook rate limit (20/s) does not enter the figure.
//! 2. Resident memory of the daemon (`VmRSS` from `/proc`), idle after start-up and at the end of
//!    a load of 64 concurrent `POST /message` clients plus inbound SMS (peak `VmHWM` too).
//!    Targets: < 10 MB idle, < 20 MB under load.
//!
//! Run: `cargo bench --bench gateway` (optionally `-- --messages 50 --seconds 10`). The
//! simulated line runs at 115200 baud with no network delay.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::app::standin::StandIn;
use smsgate::sim::{SimHandle, SimOptions};

const CHANNEL: &str = "bench-channel";
const TOKEN: &str = "bench-token";

struct Options {
    messages: usize,
    seconds: u64,
    clients: usize,
}

fn options() -> Options {
    let mut options = Options {
        messages: 50,
        seconds: 10,
        clients: 64,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--messages" => options.messages = pair[1].parse().unwrap_or(options.messages),
            "--seconds" => options.seconds = pair[1].parse().unwrap_or(options.seconds),
            "--clients" => options.clients = pair[1].parse().unwrap_or(options.clients),
            _ => {}
        }
    }
    options
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = smsgate::sim::spawn(SimOptions {
        link: Some(dir.path().join("modem")),
        baud: Some(115_200),
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let standin = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), TOKEN, false)
        .await
        .expect("stand-in");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[respond]\nchannel_id = \"{CHANNEL}\"\napi_token = \"{TOKEN}\"\nwebhook_url = \"{}\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\nmax_queue_depth = 1000000\n\
             [modem]\nport = {:?}\n[store]\npath = {:?}\n[sms]\ndefault_country = \"MY\"\n",
            standin.url(),
            sim.path().display().to_string(),
            dir.path().join("smsgate.db").display().to_string(),
        ),
    )
    .expect("config");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["run", "-c"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("smsgate starts");
    let pid = child.id().expect("pid");
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_modem(address).await;

    // 1. Inbound latency, one SMS at a time.
    let mut latencies = Vec::with_capacity(options.messages);
    for i in 0..options.messages {
        let text = format!("latency probe {i}");
        let before = standin.requests().len();
        let injected = Instant::now();
        sim.inject_sms("+60123456789", &text).await.expect("inject");
        let arrived = loop {
            let requests = standin.requests();
            if let Some(request) = requests[before..].iter().find(|r| {
                r.events()
                    .iter()
                    .any(|e| e["message"]["text"] == text.as_str())
            }) {
                break request.at;
            }
            assert!(
                injected.elapsed() < Duration::from_secs(30),
                "SMS {i} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.duration_since(injected));
        // Probes one rate-limiter interval apart (20 requests per second): back to back, the
        // figure would be the limiter's 50 ms spacing, not the gateway's latency.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    println!(
        "inbound +CMTI → webhook ({} SMS): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 90)),
        ms(*latencies.last().expect("at least one")),
    );

    // 2. Memory: idle, then under load.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = memory(pid);
    println!(
        "resident memory idle: {:.1} MB ({:.1} MB private, {:.1} MB file-backed)",
        mb(idle.rss_kb),
        mb(idle.anon_kb),
        mb(idle.file_kb)
    );
    let accepted = load(address, &sim, options.clients, options.seconds).await;
    let loaded = memory(pid);
    println!(
        "resident memory under load ({} clients, {} accepted in {} s): {:.1} MB now \
         ({:.1} MB private), {:.1} MB peak",
        options.clients,
        accepted,
        options.seconds,
        mb(loaded.rss_kb),
        mb(loaded.anon_kb),
        mb(loaded.hwm_kb)
    );
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    sim.shutdown().await;
}

/// Waits until `/health` says the modem is registered (the daemon started and initialised it).
async fn wait_for_modem(address: SocketAddr) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(response) = client
            .get(format!("http://{address}/health"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            if let Ok(body) = response.json::<serde_json::Value>().await {
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

/// `clients` concurrent `POST /message` loops for `seconds`, plus an inbound SMS every 100 ms.
async fn load(address: SocketAddr, sim: &SimHandle, clients: usize, seconds: u64) -> u64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, accepted) = (client.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < until {
                let body = json!({
                    "channelId": CHANNEL,
                    "contactId": format!("+6012{:07}", c),
                    "message": {"type": "text", "text": format!("load {c}/{i}")},
                });
                let sent = client
                    .post(format!("http://{address}/message"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    let mut n = 0;
    while Instant::now() < until {
        let _ = sim
            .inject_sms("+60198765432", &format!("inbound under load {n}"))
            .await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    accepted.load(Ordering::Relaxed)
}

struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
    /// Private memory (heap, stacks): what the daemon really costs.
    anon_kb: u64,
    /// Clean pages of the executable and libraries: shared and reclaimable.
    file_kb: u64,
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        anon_kb: field("RssAnon:"),
        file_kb: field("RssFile:"),
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
