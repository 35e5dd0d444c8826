//! The webhook worker against a local stand-in for respond.io that records every request and
//! fails on command (500s, hangs past the client timeout, 429 with `Retry-After`, 401, 404, 400).
//!
//! The queue here is mostly an in-memory implementation of `EventQueue` with the store's
//! ordering rule (a contact's events leave oldest first; a batch is that contact's due
//! head-of-line events; busy contacts are skipped; lanes), so these tests check the worker, not
//! SQLite. The concurrency tests use the real store.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use smsgate::respond::retry::RetryPolicy;
use smsgate::respond::{
    ClientOptions, EventQueue, PostOutcome, RateLimiter, WebhookClient, Worker, WorkerOptions,
};
use smsgate::store::EventBatch;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "chan-1";
const TOKEN: &str = "webhook-token";

/// What the stand-in does with the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    Status(u16),
    TooMany {
        retry_after_s: u64,
    },
    /// Answers only after this long (longer than the client's timeout).
    Hang(Duration),
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub authorization: Option<String>,
    pub body: Value,
    pub reply: Reply,
}

/// A local respond.io webhook that records requests and fails on command.
#[derive(Clone, Default)]
pub struct StandIn {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    /// Serves on a free loopback port; returns the webhook URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the stand-in");
        let address = listener.local_addr().expect("local address");
        let app = Router::new()
            .route("/webhook/", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in serves");
        });
        format!("http://{address}/webhook/")
    }

    /// Queues replies for the next requests (then `Ok` for ever).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("script lock").extend(replies);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

async fn receive(State(stand_in): State<StandIn>, headers: HeaderMap, body: String) -> Response {
    let reply = stand_in
        .script
        .lock()
        .expect("script lock")
        .pop_front()
        .unwrap_or(Reply::Ok);
    stand_in.seen.lock().expect("seen lock").push(Seen {
        at: Instant::now(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        reply: reply.clone(),
    });
    match reply {
        Reply::Ok => (StatusCode::OK, "OK").into_response(),
        Reply::Status(code) => (
            StatusCode::from_u16(code).expect("status code"),
            format!("failing on command with {code}"),
        )
            .into_response(),
        Reply::TooMany { retry_after_s } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_s.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Hang(for_) => {
            tokio::time::sleep(for_).await;
            (StatusCode::OK, "OK").into_response()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum RowState {
    Pending,
    Delivered,
    Dead(String),
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    contact: String,
    event: Value,
    enqueued_ms: i64,
    next_attempt_ms: i64,
    attempts: u32,
    state: RowState,
}

/// An in-memory webhook queue with the store's ordering rule. It stamps new rows with its
/// clock: the wall clock, or the one a test moves ([`MemoryQueue::with_clock`]).
#[derive(Clone, Default)]
pub struct MemoryQueue {
    rows: Arc<Mutex<Vec<Row>>>,
    clock: smsgate::clock::Clock,
}

#[derive(Debug, thiserror::Error)]
#[error("memory queue: {0}")]
pub struct MemoryError(String);

impl MemoryQueue {
    /// A queue that stamps rows with `clock` (give the worker the same one).
    fn with_clock(clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self {
            rows: Arc::default(),
            clock: smsgate::clock::Clock::from_fn(clock),
        }
    }

    pub fn push(&self, contact: &str, event: Value) -> i64 {
        let mut rows = self.rows.lock().expect("rows lock");
        let id = rows.len() as i64 + 1;
        let now = self.clock.now_ms();
        rows.push(Row {
            id,
            contact: contact.to_owned(),
            event,
            enqueued_ms: now,
            next_attempt_ms: now,
            attempts: 0,
            state: RowState::Pending,
        });
        id
    }

    fn states(&self) -> Vec<RowState> {
        let rows = self.rows.lock().expect("rows lock");
        rows.iter().map(|r| r.state.clone()).collect()
    }

    fn update(&self, ids: &[i64], change: impl Fn(&mut Row)) -> Result<(), MemoryError> {
        let mut rows = self.rows.lock().expect("rows lock");
        for id in ids {
            let row = rows
                .iter_mut()
                .find(|r| r.id == *id)
                .ok_or_else(|| MemoryError(format!("no event {id}")))?;
            if row.state != RowState::Pending {
                return Err(MemoryError(format!("event {id} is not pending")));
            }
            change(row);
        }
        Ok(())
    }
}

impl EventQueue for MemoryQueue {
    type Error = MemoryError;

    async fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
        busy: &[String],
    ) -> Result<Option<EventBatch>, MemoryError> {
        let rows = self.rows.lock().expect("rows lock");
        // Heads of line: each contact's oldest pending event.
        let mut heads: Vec<&Row> = Vec::new();
        for row in rows.iter().filter(|r| r.state == RowState::Pending) {
            if !heads.iter().any(|h| h.contact == row.contact) {
                heads.push(row);
            }
        }
        // As the store: among free contacts whose head is due, the lowest waiting lane goes
        // first, then the oldest event of that lane.
        let due = |contact: &str| {
            !busy.iter().any(|b| b == contact)
                && heads
                    .iter()
                    .any(|h| h.contact == contact && h.next_attempt_ms <= now_ms)
        };
        let Some(chosen) = rows
            .iter()
            .filter(|r| r.state == RowState::Pending && due(&r.contact))
            .min_by_key(|r| (lane(&r.event), r.id))
        else {
            return Ok(None);
        };
        let head = heads
            .iter()
            .find(|h| h.contact == chosen.contact)
            .expect("a pending contact has a head");
        let batch: Vec<&Row> = rows
            .iter()
            .filter(|r| r.state == RowState::Pending && r.contact == head.contact)
            .take_while(|r| r.next_attempt_ms <= now_ms)
            .take(max_events)
            .collect();
        Ok(Some(EventBatch {
            contact_id: head.contact.clone(),
            event_ids: batch.iter().map(|r| r.id).collect(),
            events: batch.iter().map(|r| r.event.clone()).collect(),
            attempts: head.attempts,
            first_enqueued_ms: head.enqueued_ms,
        }))
    }

    async fn events_delivered(&self, ids: &[i64], _now_ms: i64) -> Result<(), MemoryError> {
        self.update(ids, |row| row.state = RowState::Delivered)
    }

    async fn events_retry(
        &self,
        ids: &[i64],
        next_attempt_ms: i64,
        _error: &str,
    ) -> Result<(), MemoryError> {
        self.update(ids, |row| {
            row.attempts += 1;
            row.next_attempt_ms = next_attempt_ms;
        })
    }

    async fn events_dead(&self, ids: &[i64], error: &str) -> Result<(), MemoryError> {
        self.update(ids, |row| row.state = RowState::Dead(error.to_owned()))
    }
}

/// The store's lanes: `message`, then `message_echo`, then the rest.
fn lane(event: &Value) -> u8 {
    match event["type"].as_str() {
        Some("message") => 0,
        Some("message_echo") => 1,
        _ => 2,
    }
}

/// A queued event as the store keeps it: typed.
fn as_event(event: Value) -> smsgate::wire::Event {
    serde_json::from_value(event).expect("a respond.io event")
}

fn message_event(contact: &str, n: usize) -> Value {
    json!({"type": "message", "mId": format!("{contact}-{n}"), "timestamp": 1_700_000_000_000_i64 + n as i64,
           "message": {"type": "text", "text": format!("text {n}")}})
}

fn fast_retries() -> WorkerOptions {
    WorkerOptions {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(400),
            fault_pause: Duration::from_millis(400),
            ..RetryPolicy::default()
        },
        max_events_per_request: 20,
        max_in_flight: 8,
        idle_poll: Duration::from_millis(20),
    }
}

fn worker(
    queue: &MemoryQueue,
    url: String,
    rate: u32,
    timeout: Duration,
    options: WorkerOptions,
) -> Worker<MemoryQueue> {
    let client = WebhookClient::new(&ClientOptions {
        webhook_url: url,
        channel_id: CHANNEL.into(),
        api_token: TOKEN.into(),
        request_timeout: timeout,
    })
    .expect("client");
    Worker::new(
        queue.clone(),
        client,
        Arc::new(RateLimiter::new(rate, 1)),
        options,
    )
}

async fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks the pace where the worker decides it, and ties every arrival to it. Arrival times
/// alone cannot show the pace strictly: each request waits a different while for a connection
/// and a thread on its way (on a loaded machine, tens of milliseconds), so they blur it by
/// that much. The limiter's grants do not blur, and a request cannot arrive before its grant:
/// - no `rate + 1` grants fall within `window` (the limiter's promise, exactly; a limiter at
///   `rate + 1` per window or more fails it once it is busy for `rate + 1` requests);
/// - over the whole run, the grants' mean pace is at most `rate` (2 % for rounding);
/// - by any instant, no more requests have arrived than grants were made: the `k`-th arrival
///   comes after the `k`-th grant (a request that skips the limiter fails this).
pub(crate) fn assert_paced(
    grants: &[tokio::time::Instant],
    arrivals: &[Instant],
    rate: usize,
    window: Duration,
) {
    let mut grants: Vec<Instant> = grants.iter().map(|g| g.into_std()).collect();
    grants.sort();
    for (i, start) in grants.iter().enumerate() {
        if let Some(later) = grants.get(i + rate) {
            let span = later.duration_since(*start);
            assert!(
                span >= window,
                "{} grants within {span:?} (grants {i}..={})",
                rate + 1,
                i + rate
            );
        }
    }
    if let (Some(first), Some(last)) = (grants.first(), grants.last()) {
        let span = last.duration_since(*first).as_secs_f64();
        if span > 0.0 {
            let mean = (grants.len() - 1) as f64 / span;
            assert!(
                mean <= rate as f64 * 1.02,
                "{mean:.2} grants per second on average"
            );
        }
    }
    let mut arrivals = arrivals.to_vec();
    arrivals.sort();
    assert!(
        arrivals.len() <= grants.len(),
        "{} requests arrived on {} grants",
        arrivals.len(),
        grants.len()
    );
    for (k, (arrived, granted)) in arrivals.iter().zip(&grants).enumerate() {
        assert!(
            arrived >= granted,
            "request {k} arrived {:?} before grant {k}",
            granted.duration_since(*arrived)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_every_event_arrives_in_order_after_an_outage_and_never_above_the_rate() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    let contacts = [
        "+60100000001",
        "+60100000002",
        "+60100000003",
        "+60100000004",
    ];
    // Enough events that, once respond.io is back, the worker is held by the rate alone for
    // more than `rate` requests: a faster limiter would show.
    let per_contact = 24;
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for contact in contacts {
        let mut ids = Vec::new();
        for n in 0..per_contact {
            let event = message_event(contact, n);
            ids.push(event["mId"].as_str().expect("mId").to_owned());
            queue.push(contact, event);
        }
        expected.push((contact.to_owned(), ids));
    }
    // respond.io down for a while: server errors, hangs past the timeout, then rate limiting.
    stand_in.script([
        Reply::Status(500),
        Reply::Status(502),
        Reply::Hang(Duration::from_secs(4)),
        Reply::Status(503),
        Reply::Hang(Duration::from_secs(4)),
        Reply::TooMany { retry_after_s: 1 },
        Reply::Status(500),
    ]);
    let rate = 20;
    let mut options = fast_retries();
    options.max_events_per_request = 3; // several requests per contact
    // A timeout far beyond any answer the stand-in gives at once, so only the two hangs (which
    // outlast it: they start after the client's timer) time out, and no accepted request is
    // posted twice.
    let worker = worker(&queue, url, rate, Duration::from_secs(2), options);
    let metrics = worker.metrics();
    let limiter = worker.limiter();
    limiter.record_grants();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    wait_until(Duration::from_secs(30), "every event delivered", || {
        queue.states().iter().all(|s| *s == RowState::Delivered)
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("worker stops on shutdown")
        .expect("worker task");

    let seen = stand_in.seen();
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer webhook-token")
        );
        assert_eq!(request.body["channelId"], CHANNEL);
    }
    // Per-contact order among the accepted requests, each event exactly once.
    for (contact, ids) in &expected {
        let delivered: Vec<String> = seen
            .iter()
            .filter(|s| matches!(s.reply, Reply::Ok) && s.body["contactId"] == contact.as_str())
            .flat_map(|s| s.body["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["mId"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(&delivered, ids, "events of {contact}");
    }
    // The 429 held every request for its Retry-After.
    let too_many = seen
        .iter()
        .position(|s| matches!(s.reply, Reply::TooMany { .. }))
        .expect("the 429 was served");
    let after = seen[too_many + 1].at.duration_since(seen[too_many].at);
    assert!(
        after >= Duration::from_millis(990),
        "next request {after:?} after the 429"
    );
    let arrivals: Vec<Instant> = seen.iter().map(|s| s.at).collect();
    assert_paced(
        &limiter.grants(),
        &arrivals,
        rate as usize,
        Duration::from_secs(1),
    );
    assert_eq!(
        metrics.events_delivered() as usize,
        contacts.len() * per_contact
    );
    assert_eq!(metrics.requests() as usize, seen.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_a_burst_is_paced_to_the_rate() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    for n in 0..45 {
        queue.push(&format!("+6010000{n:04}"), message_event("c", n));
    }
    let rate = 20;
    let mut worker = worker(&queue, url, rate, Duration::from_secs(5), fast_retries());
    let limiter = worker.limiter();
    limiter.record_grants();
    let start = Instant::now();
    for _ in 0..45 {
        assert!(matches!(
            worker.try_one().await.expect("step"),
            PostOutcome::Delivered { events: 1, .. }
        ));
    }
    assert_eq!(worker.try_one().await.expect("step"), PostOutcome::Idle);
    let spent = start.elapsed();
    // 45 requests at 20/s: the first is free, the other 44 wait 50 ms each.
    assert!(spent >= Duration::from_millis(2_190), "{spent:?}");
    let arrivals: Vec<Instant> = stand_in.seen().iter().map(|s| s.at).collect();
    assert_eq!(arrivals.len(), 45);
    assert_paced(
        &limiter.grants(),
        &arrivals,
        rate as usize,
        Duration::from_secs(1),
    );
}

#[tokio::test]
async fn webhook_events_of_one_contact_are_coalesced_in_one_request() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    for n in 0..3 {
        queue.push("+60177872890", message_event("a", n));
    }
    queue.push(
        "+60177872890",
        json!({"type": "message_status", "mId": "a-0", "timestamp": 5,
               "status": {"value": "failed", "message": "invalid destination number"}}),
    );
    let mut worker = worker(&queue, url, 20, Duration::from_secs(5), fast_retries());
    assert_eq!(
        worker.try_one().await.expect("step"),
        PostOutcome::Delivered {
            contact_id: "+60177872890".into(),
            events: 4
        }
    );
    let seen = stand_in.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["channelId"], CHANNEL);
    assert_eq!(seen[0].body["contactId"], "+60177872890");
    assert_eq!(seen[0].body["contact"]["phone"], "+60177872890");
    let types: Vec<&str> = seen[0].body["events"]
        .as_array()
        .expect("events list")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types, ["message", "message", "message", "message_status"]);
}

#[tokio::test]
async fn webhook_a_refused_token_pauses_everything_and_keeps_the_events() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    queue.push("+60100000001", message_event("a", 0));
    queue.push("+60100000002", message_event("b", 0));
    stand_in.script([Reply::Status(401), Reply::Status(403)]);
    // A pause many times one request interval, so "no pause after a success" stands out from
    // any stall of the machine.
    let rate = 20;
    let fault_pause = Duration::from_secs(2);
    let mut options = fast_retries();
    options.retry.fault_pause = fault_pause;
    let mut worker = worker(&queue, url, rate, Duration::from_secs(5), options);
    let metrics = worker.metrics();
    match worker.try_one().await.expect("step") {
        PostOutcome::Paused {
            reason,
            events,
            contact_id,
        } => {
            assert_eq!((contact_id.as_str(), events), ("+60100000001", 1));
            assert!(
                reason.starts_with("respond.io rejects the API token (HTTP 401"),
                "{reason}"
            );
            assert!(reason.contains("respond.api_token_file"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(queue.states(), [RowState::Pending, RowState::Pending]);
    let fault = metrics.fault().expect("health shows the pause");
    assert!(
        fault.starts_with("respond.io rejects the API token"),
        "{fault}"
    );
    // Everyone waits out the pause instead of hammering with a bad token; a 403 is the same.
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Paused { .. }
    ));
    assert_eq!(queue.states(), [RowState::Pending, RowState::Pending]);
    // The token works again: the next request after the pause delivers, the pause is over.
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Delivered { .. }
    ));
    assert_eq!(metrics.fault(), None);
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Delivered { .. }
    ));
    assert_eq!(queue.states(), [RowState::Delivered, RowState::Delivered]);
    let seen = stand_in.seen();
    assert_eq!(seen.len(), 4);
    // Each refusal held the next request for the whole pause (the hold starts once the
    // answer is in, after it arrived here).
    for pair in seen[..3].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= fault_pause - Duration::from_millis(10), "{gap:?}");
    }
    // After the success only the rate spaces the next one: one interval, far below a pause.
    let gap = seen[3].at.duration_since(seen[2].at);
    assert!(
        gap < fault_pause - Duration::from_secs(1) / rate,
        "no pause after a success: {gap:?}"
    );
}

#[tokio::test]
async fn webhook_a_404_is_a_configuration_fault_that_keeps_the_events() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    queue.push("+60100000001", message_event("a", 0));
    stand_in.script([Reply::Status(404), Reply::Status(410)]);
    let mut worker = worker(
        &queue,
        url.clone(),
        20,
        Duration::from_secs(5),
        fast_retries(),
    );
    let metrics = worker.metrics();
    for code in ["404", "410"] {
        match worker.try_one().await.expect("step") {
            PostOutcome::Paused { reason, .. } => {
                assert!(
                    reason.starts_with(&format!("respond.io answers HTTP {code}")),
                    "{reason}"
                );
                assert!(reason.contains(&url), "names the URL: {reason}");
                assert!(reason.contains("respond.webhook_url"), "{reason}");
            }
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(queue.states(), [RowState::Pending]);
        assert!(metrics.fault().is_some_and(|f| f.contains(code)));
    }
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Delivered { .. }
    ));
    assert_eq!(queue.states(), [RowState::Delivered]);
    assert_eq!(metrics.fault(), None);
    assert_eq!(
        metrics.failures(smsgate::respond::retry::FailureKind::NotFound),
        2
    );
}

#[tokio::test]
async fn webhook_a_rejected_payload_is_dead_at_once_with_the_reason() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    let queue = MemoryQueue::default();
    queue.push("+60100000001", message_event("a", 0));
    stand_in.script([Reply::Status(400)]);
    let mut worker = worker(&queue, url, 20, Duration::from_secs(5), fast_retries());
    match worker.try_one().await.expect("step") {
        PostOutcome::Dead { error, .. } => assert_eq!(
            error,
            "respond.io rejected the events (HTTP 400: failing on command with 400)"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(worker.try_one().await.expect("step"), PostOutcome::Idle);
    assert_eq!(stand_in.seen().len(), 1);
}

#[tokio::test]
async fn webhook_events_past_the_maximum_age_are_dead_not_retried() {
    let stand_in = StandIn::default();
    let url = stand_in.start().await;
    // The age is the queue's: a clock the test moves, so building the client, connecting and
    // a slow machine add nothing to it.
    let clock = crate::store_fixtures::Clock::new();
    let queue = MemoryQueue::with_clock(clock.func());
    queue.push("+60100000001", message_event("a", 0));
    stand_in.script([Reply::Status(503), Reply::Status(503)]);
    let mut options = fast_retries();
    options.retry.max_age = Duration::from_millis(100);
    let mut worker =
        worker(&queue, url, 20, Duration::from_secs(5), options).with_clock(clock.func());
    // Age 0 plus the first backoff (at most 40 ms) is within 100 ms: tried again.
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Retrying { .. }
    ));
    clock.advance(Duration::from_millis(120));
    match worker.try_one().await.expect("step") {
        PostOutcome::Dead { error, .. } => {
            assert!(error.starts_with("gave up after 2 attempts"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_connection_refused_is_retried() {
    // A port nobody listens on: bind, note the address, close.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let queue = MemoryQueue::default();
    queue.push("+60100000001", message_event("a", 0));
    let mut worker = worker(
        &queue,
        format!("http://{address}/webhook/"),
        20,
        Duration::from_secs(5),
        fast_retries(),
    );
    assert!(matches!(
        worker.try_one().await.expect("step"),
        PostOutcome::Retrying { .. }
    ));
    let error = worker
        .metrics()
        .current_error()
        .expect("the failure is remembered")
        .message;
    assert!(error.starts_with("cannot reach respond.io"), "{error}");
}

/// The limiter's window as `Worker::from_config` sets it: one request interval of margin on
/// the one-second window.
pub(crate) fn window(rate: u32) -> Duration {
    Duration::from_secs(1) + Duration::from_secs(1) / rate
}

/// A worker on the real store, posting to the shared stand-in (`smsgate::app::standin`), which
/// can delay its answers and counts overlapping requests per contact.
async fn store_worker(
    rate: u32,
    options: WorkerOptions,
) -> (
    smsgate::store::Store,
    smsgate::app::standin::StandIn,
    Worker<smsgate::store::Store>,
) {
    let standin =
        smsgate::app::standin::StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), TOKEN, false)
            .await
            .expect("stand-in");
    let store = smsgate::store::Store::open_in_memory()
        .await
        .expect("store");
    let client = WebhookClient::new(&ClientOptions {
        webhook_url: standin.url(),
        channel_id: CHANNEL.into(),
        api_token: TOKEN.into(),
        request_timeout: Duration::from_secs(5),
    })
    .expect("client");
    let worker = Worker::new(
        store.clone(),
        client,
        Arc::new(RateLimiter::new(rate, 1).with_window(window(rate))),
        options,
    )
    .with_notify(store.event_signal());
    (store, standin, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_concurrency_never_reorders_a_contact_under_random_answer_delays() {
    let mut options = fast_retries();
    options.max_events_per_request = 3; // several requests per contact
    options.max_in_flight = 8;
    let rate = 40;
    let (store, standin, worker) = store_worker(rate, options).await;
    let limiter = worker.limiter();
    limiter.record_grants();
    standin.set_answer_delay_range(Duration::ZERO, Duration::from_millis(150));
    // 24 contacts, 12 events each, of all three lanes, interleaved across contacts.
    let kinds = ["message", "message_echo", "message_status"];
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for c in 0..24 {
        expected.push((format!("+6011{c:08}"), Vec::new()));
    }
    for n in 0..12 {
        for (c, (contact, ids)) in expected.iter_mut().enumerate() {
            let m_id = format!("{contact}-{n}");
            let event = match kinds[(n + c) % 3] {
                "message_status" => json!({"type": "message_status", "mId": m_id, "timestamp": n,
                                           "status": {"value": "sent"}}),
                kind => json!({"type": kind, "mId": m_id, "timestamp": n,
                               "message": {"type": "text", "text": format!("text {n}")}}),
            };
            store
                .enqueue_event(contact, as_event(event), smsgate::clock::now_ms())
                .await
                .expect("enqueue");
            ids.push(m_id);
        }
    }
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let started = Instant::now();
    loop {
        let stats = store.webhook_stats(0).await.expect("stats");
        if stats.pending == 0 {
            assert_eq!(stats.dead, 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "still pending: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.expect("worker task");

    assert_eq!(
        standin.overlaps(),
        0,
        "two requests for one contact at once"
    );
    let most = standin.most_held_at_once();
    assert!((2..=8).contains(&most), "{most} requests at once");
    let accepted = standin.accepted_events();
    for (contact, ids) in &expected {
        let delivered: Vec<String> = accepted
            .iter()
            .filter(|(c, _)| c == contact)
            .map(|(_, e)| e["mId"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(&delivered, ids, "events of {contact}");
    }
    let arrivals: Vec<Instant> = standin.requests().iter().map(|r| r.at).collect();
    assert_paced(&limiter.grants(), &arrivals, rate as usize, window(rate));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_after_a_failure_one_request_at_a_time_until_one_succeeds() {
    let options = fast_retries();
    let (store, standin, worker) = store_worker(20, options).await;
    standin.set_answer_delay(Duration::from_millis(100));
    standin.set_behaviour(smsgate::app::standin::Behaviour::Status(503));
    for c in 0..20 {
        store
            .enqueue_event(
                &format!("+6012{c:08}"),
                as_event(message_event("c", c)),
                smsgate::clock::now_ms(),
            )
            .await
            .expect("enqueue");
    }
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let started = Instant::now();
    while standin.requests().len() < 14 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "too few retries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failing = standin.requests();
    // At most `max_in_flight` requests left before the first failure was known; every later
    // one waited for the one before it to be answered.
    for pair in failing[8..].windows(2) {
        let answered = pair[0].answered_at.expect("a 503 is answered");
        assert!(
            pair[1].at >= answered,
            "a request started while another was in flight during the outage"
        );
    }
    let switched = failing.len();
    standin.set_behaviour(smsgate::app::standin::Behaviour::Accept);
    loop {
        let stats = store.webhook_stats(0).await.expect("stats");
        if stats.pending == 0 {
            assert_eq!(stats.dead, 0);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.expect("worker task");
    // Once respond.io answers again, requests overlap again.
    let after = &standin.requests()[switched..];
    let overlapping = after.windows(2).any(|pair| {
        pair[0]
            .answered_at
            .is_some_and(|answered| pair[1].at < answered)
    });
    assert!(overlapping, "no concurrency after the recovery");
}

#[tokio::test]
async fn webhook_a_contacts_sent_and_delivered_share_one_request() {
    let (store, standin, mut worker) = store_worker(20, fast_retries()).await;
    let now = smsgate::clock::now_ms();
    for value in ["sent", "delivered"] {
        store
            .enqueue_event(
                "+60170000001",
                as_event(
                    json!({"type": "message_status", "mId": "m-1", "timestamp": now,
                       "status": {"value": value}}),
                ),
                now,
            )
            .await
            .expect("enqueue");
    }
    assert_eq!(
        worker.try_one().await.expect("step"),
        PostOutcome::Delivered {
            contact_id: "+60170000001".into(),
            events: 2
        }
    );
    assert_eq!(worker.try_one().await.expect("step"), PostOutcome::Idle);
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    let values: Vec<&str> = requests[0]
        .events()
        .iter()
        .filter_map(|e| e["status"]["value"].as_str())
        .collect();
    assert_eq!(values, ["sent", "delivered"]);
}
