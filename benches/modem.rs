//! Driver throughput against the simulated modem at 115200 baud with no network delay.
//!
//! Run: `cargo bench --bench modem` (optionally `-- 1000` for another message count).
//!
//! Pushes 500 single-part 160-character messages through [`smsgate::modem`] one after the
//! other, as the outbox does, and prints:
//! - SMS per second, and that rate as a share of the line-speed limit: the bytes each SMS puts
//!   on the wire in both directions (command, prompt, PDU, answer — counted by the simulator)
//!   at 11,520 bytes/s (115200 baud, 8N1). Target ≥ 0.9.
//! - the median idle gap between one `+CMGS:` answer and the next `AT+CMGS`, twice: on the wire
//!   (the simulator's figure: last byte of the answer, `OK` included, to the next byte from the
//!   driver) and inside the driver (the AT engine's `trace` events: `+CMGS:` line read to
//!   `AT+CMGS` written). Target < 2 ms.
//! - the driver's other turnaround, from the `> ` prompt to the PDU written.
//!
//! Then the same run on an unpaced line shows the driver's own ceiling. It does not measure the
//! network (the simulator answers at once) nor receiving.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smsgate::modem::{self, ModemOptions, ModemState};
use smsgate::pdu::{self, Address, SubmitOptions};
use smsgate::sim::{self, SimOptions};
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

const BAUD: u32 = 115_200;
/// 8N1: ten bits on the line per byte.
const LINE_BYTES_PER_SECOND: f64 = BAUD as f64 / 10.0;

/// When each `+CMGS:` answer arrived and each `AT+CMGS` left, from the engine's trace lines.
#[derive(Default)]
struct Marks {
    answers: Vec<Instant>,
    commands: Vec<Instant>,
    prompts: Vec<Instant>,
    payloads: Vec<Instant>,
}

struct GapLayer(Arc<Mutex<Marks>>);

#[derive(Default)]
struct Fields {
    dir: String,
    line: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "dir" => self.dir = value.to_owned(),
            "line" => self.line = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GapLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let now = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut marks = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if fields.dir == "rx" && fields.line.starts_with("+CMGS:") {
            marks.answers.push(now);
        } else if fields.dir == "tx" && fields.line.starts_with("AT+CMGS=") {
            marks.commands.push(now);
        } else if fields.dir == "rx" && fields.line.starts_with('>') {
            marks.prompts.push(now);
        } else if fields.dir == "tx" && fields.line.len() > 24 && fields.line.starts_with("00") {
            marks.payloads.push(now);
        }
    }
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(500);
    let marks = Arc::new(Mutex::new(Marks::default()));
    let targets = tracing_subscriber::filter::Targets::new()
        .with_target("smsgate::at", tracing::Level::TRACE);
    tracing_subscriber::registry()
        .with(tracing_subscriber::Layer::with_filter(
            GapLayer(Arc::clone(&marks)),
            targets,
        ))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        run(count, Some(BAUD), &marks).await;
        run(count, None, &marks).await;
    });
}

/// For each mark in `from`, the time to the first mark in `to` after it; sorted.
fn gaps(from: &[Instant], to: &[Instant]) -> Vec<Duration> {
    let mut gaps: Vec<Duration> = from
        .iter()
        .filter_map(|start| {
            let next = to.partition_point(|mark| mark <= start);
            to.get(next).map(|end| *end - *start)
        })
        .collect();
    gaps.sort();
    gaps
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

async fn run(count: usize, baud: Option<u32>, marks: &Mutex<Marks>) {
    *marks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Marks::default();
    let simulator = sim::spawn(SimOptions {
        baud,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts");
    let shutdown = CancellationToken::new();
    let options = ModemOptions {
        port: simulator.path(),
        endpoint: None,
        baud: BAUD,
        pin: None,
        delivery_reports: false,
        sweep_interval: Duration::from_secs(3600),
        command_timeout: Duration::from_secs(10),
        send_timeout: Duration::from_secs(60),
        reset_on_failure: false,
        balance: None,
        hangup_calls: false,
    };
    let (modem, _events) = modem::spawn(options, shutdown.clone());
    let mut health = modem.health_watch();
    tokio::time::timeout(Duration::from_secs(30), async {
        while health.borrow_and_update().state != ModemState::Ready {
            health.changed().await.expect("modem task alive");
        }
    })
    .await
    .expect("modem ready within 30 s");
    // Let the start-up sweep and storage query finish so only sends are measured.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let recipient = Address::parse("+60123456789").expect("recipient");
    let text: String = "smsgate benchmark 0123456789 "
        .chars()
        .cycle()
        .take(160)
        .collect();
    let parts = pdu::encode_submit(&recipient, &text, &SubmitOptions::default()).expect("encode");
    assert_eq!(parts.len(), 1, "160 GSM characters fit one part");
    let part = &parts[0];

    let before = simulator.line_stats();
    let started = Instant::now();
    for _ in 0..count {
        modem.send_part(part, false).await.expect("part accepted");
    }
    let elapsed = started.elapsed();
    let after = simulator.line_stats();
    shutdown.cancel();

    let wire = (after.bytes_in - before.bytes_in) + (after.bytes_out - before.bytes_out);
    let per_sms = wire as f64 / count as f64;
    let rate = count as f64 / elapsed.as_secs_f64();
    let Some(baud) = baud else {
        println!("modem driver, simulator with an unpaced line (the driver's own ceiling)");
        println!("  messages          {count} × 160 characters (1 part each)");
        println!("  throughput        {rate:.1} SMS/s");
        return;
    };
    let limit = LINE_BYTES_PER_SECOND / per_sms;

    let mut wire_gaps = simulator.send_gaps();
    wire_gaps.sort();
    let marks = marks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let answer_gaps = gaps(&marks.answers, &marks.commands);
    let prompt_gaps = gaps(&marks.prompts, &marks.payloads);
    let per_sms_time = elapsed / count as u32;

    println!("modem driver, simulator at {baud} baud, no network delay");
    println!("  messages          {count} × 160 characters (1 part each)");
    println!(
        "  elapsed           {:.2} s ({:.2} ms per SMS)",
        elapsed.as_secs_f64(),
        ms(per_sms_time)
    );
    println!("  bytes per SMS     {per_sms:.1} (both directions, on the wire)");
    println!("  throughput        {rate:.2} SMS/s");
    println!(
        "  line-speed limit  {limit:.2} SMS/s ({:.2} ms per SMS)",
        1e3 / limit
    );
    println!("  ratio             {:.3}   (target ≥ 0.9)", rate / limit);
    println!(
        "  idle gap after +CMGS:, on the wire     median {:.3} ms over {} gaps   (target < 2 ms)",
        ms(median(&wire_gaps)),
        wire_gaps.len()
    );
    println!(
        "  idle gap after +CMGS:, in the driver   median {:.3} ms over {} gaps",
        ms(median(&answer_gaps)),
        answer_gaps.len()
    );
    println!(
        "  prompt → PDU written, in the driver    median {:.3} ms over {} prompts",
        ms(median(&prompt_gaps)),
        prompt_gaps.len()
    );
    // Where the rest of each SMS's time goes: the two waits on the modem, against the time
    // their bytes need on the line (TS 27.005 §3.5.1: `AT+CMGS=<n>\r`, `\r\n> `, the PDU and
    // Ctrl-Z, `\r\n+CMGS: <mr>\r\n\r\nOK\r\n`).
    let line = |bytes: usize| Duration::from_secs_f64(bytes as f64 / LINE_BYTES_PER_SECOND);
    let command_bytes = format!("AT+CMGS={}\r", part.tpdu_length).len();
    let pdu_bytes = part.hex().len() + 1;
    let answer_bytes = "\r\n+CMGS: 0\r\n\r\nOK\r\n".len();
    let to_prompt = gaps(&marks.commands, &marks.prompts);
    let to_answer = gaps(&marks.payloads, &marks.answers);
    println!(
        "  AT+CMGS → prompt, at the modem         median {:.3} ms (line time {:.3} ms)",
        ms(median(&to_prompt)),
        ms(line(command_bytes + 4))
    );
    println!(
        "  PDU → +CMGS:, at the modem             median {:.3} ms (line time {:.3} ms)",
        ms(median(&to_answer)),
        ms(line(pdu_bytes + answer_bytes))
    );
}
