//! A pool of SIMs, measured.
//!
//! 1. Throughput: the real gateway (in this process) drives N simulated modems on real ptys,
//!    each taking a random 1–2 s of network time per part, with no caps. 400 messages to 400
//!    contacts are posted as respond.io would; the figure is the aggregate send rate, from the
//!    first `POST /message` to the last part any simulator accepted, for N = 1, 2, 4 and 8, as a
//!    ratio to N × the one-modem rate (target ≥ 0.95). Medians of `--runs` runs.
//! 2. Pacing: 4 SIMs at `per_minute = 10`, 1,000 single-part messages to 1,000 contacts, each
//!    to the SIM that can send it soonest, 1–2 s per send: how long the drain takes, in
//!    simulated time (the pacing module, [`smsgate::pacing`], with a simulated clock), and the
//!    most parts any SIM sent in a sliding minute. Target: about 25 minutes, never over 10.
//!
//! Run: `cargo bench --bench pool` (optionally `-- --messages 400 --runs 3 --delay-ms 1000-2000
//! --modems 1,2,4,8`). A 1–2 s delay makes one run at N = 1 take about ten minutes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::json;
use smsgate::app::Gateway;
use smsgate::app::standin::StandIn;
use smsgate::config::Config;
use smsgate::pacing::{Limits, MINUTE_MS, Pacer};
use smsgate::sim::{SimHandle, SimOptions};
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "bench-channel";
const TOKEN: &str = "bench-token-0123456789";

struct Options {
    messages: usize,
    runs: usize,
    delay: (u64, u64),
    modems: Vec<usize>,
    skip_throughput: bool,
}

fn options() -> Options {
    let mut options = Options {
        messages: 400,
        runs: 3,
        delay: (1000, 2000),
        modems: vec![1, 2, 4, 8],
        skip_throughput: false,
    };
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        match arg.as_str() {
            "--messages" => options.messages = value.parse().unwrap_or(options.messages),
            "--runs" => options.runs = value.parse().unwrap_or(options.runs).max(1),
            "--delay-ms" => {
                if let Some((low, high)) = value.split_once('-') {
                    if let (Ok(low), Ok(high)) = (low.parse::<u64>(), high.parse::<u64>()) {
                        options.delay = (low, high.max(low));
                    }
                }
            }
            "--modems" => {
                let list: Vec<usize> = value.split(',').filter_map(|n| n.parse().ok()).collect();
                if !list.is_empty() {
                    options.modems = list;
                }
            }
            "--pacing-only" => options.skip_throughput = true,
            _ => {}
        }
    }
    options
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    if !options.skip_throughput {
        throughput(&options).await;
    }
    pacing(&options);
}

async fn throughput(options: &Options) {
    println!(
        "throughput: {} messages to {} contacts, {}–{} ms network time per part, no caps, \
         median of {} runs",
        options.messages, options.messages, options.delay.0, options.delay.1, options.runs
    );
    let mut medians = Vec::new();
    for &n in &options.modems {
        let mut rates = Vec::new();
        for run in 0..options.runs {
            let rate = one_run(n, options).await;
            println!("  N = {n}, run {}: {rate:.3} messages/s", run + 1);
            rates.push(rate);
        }
        medians.push((n, median(&mut rates)));
    }
    let one = medians.iter().find(|(n, _)| *n == 1).map(|(_, rate)| *rate);
    println!("\n| modems | messages/s (median) | ratio to N × one modem |");
    println!("|-------:|--------------------:|-----------------------:|");
    for (n, rate) in &medians {
        let ratio = one.map_or("–".to_owned(), |one| {
            format!("{:.3}", rate / (*n as f64 * one))
        });
        println!("| {n} | {rate:.3} | {ratio} |");
    }
    println!();
}

async fn one_run(n: usize, options: &Options) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sims = Vec::new();
    let mut modems = String::new();
    for i in 0..n {
        let name = format!("sim-{}", (b'a' + i as u8) as char);
        let sim = smsgate::sim::spawn(SimOptions {
            link: Some(dir.path().join(&name)),
            baud: Some(115_200),
            network_delay: Duration::from_millis(options.delay.0),
            network_delay_jitter: Duration::from_millis(options.delay.1 - options.delay.0),
            ..SimOptions::default()
        })
        .await
        .expect("simulator");
        modems.push_str(&format!(
            "[[modems]]\nname = {name:?}\nport = {:?}\ndelivery_reports = false\n\n",
            sim.path().display().to_string()
        ));
        sims.push(sim);
    }
    let standin = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), TOKEN, false)
        .await
        .expect("stand-in");
    let text = format!(
        "[respond]\nchannel_id = \"{CHANNEL}\"\napi_token = \"{TOKEN}\"\nwebhook_url = \"{}\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = {:?}\n[sms]\ndefault_country = \"MY\"\n\
         [admin]\nlisten = \"off\"\n\n{modems}",
        standin.url(),
        dir.path().join("smsgate.db").display().to_string()
    );
    let config = Config::parse(&text).expect("config");
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(config, shutdown.clone())
        .await
        .expect("gateway");
    let address = gateway.http_address();
    let pool = gateway.pool().clone();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while !pool.members().iter().all(|m| m.usable()) {
        assert!(
            Instant::now() < ready_by,
            "the simulated modems never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..options.messages {
        let response = client
            .post(format!("http://{address}/message"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"channelId": CHANNEL, "contactId": format!("+6012{:07}", 5_000_000 + i),
                          "message": {"type": "text", "text": format!("bench {i}")}}),
            )
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200);
    }
    let last = wait_all_sent(&sims, options.messages).await;
    let elapsed = last.duration_since(started).as_secs_f64();
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), gateway.wait()).await;
    for sim in &sims {
        sim.shutdown().await;
    }
    standin.stop();
    options.messages as f64 / elapsed
}

/// Waits until the simulators accepted `total` parts between them; returns when the last was.
async fn wait_all_sent(sims: &[SimHandle], total: usize) -> Instant {
    loop {
        let mut count = 0;
        let mut last = None::<Instant>;
        for sim in sims {
            let parts = sim.submitted().await;
            count += parts.len();
            for part in parts {
                last = Some(last.map_or(part.at, |l| l.max(part.at)));
            }
        }
        assert!(
            count <= total,
            "more parts than messages: something was sent twice"
        );
        if count == total {
            return last.expect("parts");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 4 SIMs at 10 parts a minute, 1,000 messages, simulated time.
fn pacing(options: &Options) {
    const SIMS: usize = 4;
    const MESSAGES: usize = 1_000;
    let limits = Limits {
        per_minute: std::num::NonZeroU32::new(10),
        ..Limits::default()
    };
    let mut minutes = Vec::new();
    let mut worst = 0;
    for seed in 0..options.runs.max(3) as u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut pacers: Vec<Pacer> = (0..SIMS).map(|_| Pacer::new(limits)).collect();
        // When each SIM's current send ends (a SIM sends one part at a time).
        let mut busy_until = [0i64; SIMS];
        let mut logs: Vec<Vec<i64>> = vec![Vec::new(); SIMS];
        let mut end = 0i64;
        for i in 0..MESSAGES {
            let recipient = format!("+6013{i:07}");
            // The SIM that can send it soonest, as the router picks a new contact's SIM.
            let (sim, at) = (0..SIMS)
                .map(|s| {
                    let from = busy_until[s];
                    (
                        s,
                        pacers[s]
                            .next_message(from, 1, &recipient, Duration::ZERO)
                            .at_ms,
                    )
                })
                .min_by_key(|&(s, at)| (at, s))
                .expect("four SIMs");
            assert!(pacers[sim].burst(at, 1, &recipient) >= 1);
            pacers[sim].record(at, &recipient, true);
            logs[sim].push(at);
            let send = rng.random_range(options.delay.0..=options.delay.1) as i64;
            busy_until[sim] = at + send;
            end = end.max(at + send);
        }
        for log in &logs {
            for (i, start) in log.iter().enumerate() {
                let inside = log[i..]
                    .iter()
                    .take_while(|t| **t - start < MINUTE_MS)
                    .count();
                worst = worst.max(inside);
            }
        }
        minutes.push(end as f64 / 60_000.0);
    }
    println!(
        "pacing: {SIMS} SIMs at per_minute = 10, {MESSAGES} messages, {}–{} ms per send, \
         simulated time: drain {:.2} minutes (median of {} seeds); most parts in any sliding \
         minute on one SIM: {worst}",
        options.delay.0,
        options.delay.1,
        median(&mut minutes),
        minutes.len()
    );
}
