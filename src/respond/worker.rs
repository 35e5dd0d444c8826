//! The webhook worker: takes the next due batch of ONE contact's events from the queue, posts
//! it, and records the outcome (delivered, retry later, dead) — one step at a time
//! ([`Worker::try_one`]) or in a loop ([`Worker::run`]).
//!
//! Per-contact order holds because there is one worker, it posts one batch at a time, and the
//! queue only hands out a contact's head-of-line events ([`EventQueue::next_event_batch`]).
//! The rate holds because every request first takes a token from the [`RateLimiter`]. What it
//! does not do: build events (the inbox and outbox do) or keep them (the store does).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::RespondError;
use super::client::WebhookClient;
use super::metrics::WebhookMetrics;
use super::ratelimit::RateLimiter;
use super::retry::{Decision, FailureKind, RetryPolicy};
use crate::phone::mask;

/// The oldest due events of one contact (Contract 4's `EventBatch`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub contact_id: String,
    pub event_ids: Vec<i64>,
    /// The events exactly as queued, oldest first.
    pub events: Vec<serde_json::Value>,
    /// Failed attempts so far (of the head event).
    pub attempts: u32,
    /// When the oldest event of the batch was queued (Unix ms).
    pub first_enqueued_ms: i64,
}

/// The durable webhook queue, as the worker needs it. `smsgate::store::Store` implements it;
/// tests use an in-memory queue.
pub trait EventQueue: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next due batch: the oldest pending events of one contact whose head-of-line event
    /// is due; never an event before an earlier pending event of the same contact.
    fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
    ) -> impl Future<Output = Result<Option<EventBatch>, Self::Error>> + Send;

    fn events_delivered(
        &self,
        ids: &[i64],
        now_ms: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    fn events_retry(
        &self,
        ids: &[i64],
        next_attempt_ms: i64,
        error: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    fn events_dead(
        &self,
        ids: &[i64],
        error: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Settings of the worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub retry: RetryPolicy,
    /// Most events coalesced into one request.
    pub max_events_per_request: usize,
    /// How often an idle worker looks for events that became due (retries) without being
    /// woken.
    pub idle_poll: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            max_events_per_request: 20,
            idle_poll: Duration::from_secs(1),
        }
    }
}

impl WorkerOptions {
    /// The settings from `[respond]`.
    pub fn from_config(config: &crate::config::RespondConfig) -> Self {
        Self {
            retry: RetryPolicy {
                max_age: config.max_event_age,
                ..RetryPolicy::default()
            },
            ..Self::default()
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was due.
    Idle,
    /// respond.io accepted `events` events of the contact.
    Delivered { contact_id: String, events: usize },
    /// The events will be tried again at `at_ms`.
    Retrying {
        contact_id: String,
        events: usize,
        at_ms: i64,
    },
    /// The events were parked as dead.
    Dead {
        contact_id: String,
        events: usize,
        error: String,
    },
}

/// Wakes an idle worker when events were queued (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Unix milliseconds now; the worker's clock unless a test gives it another.
pub fn system_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The webhook worker.
pub struct Worker<Q> {
    queue: Q,
    client: WebhookClient,
    limiter: Arc<RateLimiter>,
    options: WorkerOptions,
    metrics: Arc<WebhookMetrics>,
    waker: Waker,
    clock: fn() -> i64,
    consecutive_failures: u32,
}

impl<Q: EventQueue> Worker<Q> {
    pub fn new(
        queue: Q,
        client: WebhookClient,
        limiter: Arc<RateLimiter>,
        options: WorkerOptions,
    ) -> Self {
        Self {
            queue,
            client,
            limiter,
            options,
            metrics: Arc::default(),
            waker: Waker::default(),
            clock: system_now_ms,
            consecutive_failures: 0,
        }
    }

    /// A worker with the settings of `[respond]` (token already resolved): its own client,
    /// a token bucket of `rate_limit` requests per second without bursts, `max_event_age`.
    pub fn from_config(
        queue: Q,
        config: &crate::config::RespondConfig,
    ) -> Result<Self, RespondError> {
        let client = WebhookClient::new(&super::ClientOptions::from_config(config))?;
        Ok(Self::new(
            queue,
            client,
            Arc::new(RateLimiter::new(config.rate_limit, 1)),
            WorkerOptions::from_config(config),
        ))
    }

    /// Uses another clock for the queue's timestamps (Unix ms).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// The counters this worker updates (for `/metrics` and `/health`).
    pub fn metrics(&self) -> Arc<WebhookMetrics> {
        Arc::clone(&self.metrics)
    }

    /// A handle that wakes the worker when it idles.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Idles on `notify` (e.g. the store's event signal, raised whenever an event is queued)
    /// instead of a private one.
    pub fn with_notify(mut self, notify: Arc<Notify>) -> Self {
        self.waker = Waker(notify);
        self
    }

    /// Posts the next due batch, if any, and records what happened.
    pub async fn try_one(&mut self) -> Result<Outcome, RespondError> {
        let now_ms = (self.clock)();
        let Some(batch) = self
            .queue
            .next_event_batch(now_ms, self.options.max_events_per_request.max(1))
            .await
            .map_err(RespondError::queue)?
        else {
            return Ok(Outcome::Idle);
        };
        self.limiter.acquire().await;
        let posted = self.client.post(&batch.contact_id, &batch.events).await;
        self.metrics.record_request(posted.elapsed);
        let now_ms = (self.clock)();
        let events = batch.events.len();
        let contact = mask(&batch.contact_id);
        let failures = batch.attempts.saturating_add(1);
        let consecutive = self.consecutive_failures.saturating_add(1);
        let jitter = rand::rng().random::<f64>();
        let decision = self.options.retry.decide(
            &posted.attempt,
            failures,
            batch.first_enqueued_ms,
            now_ms,
            consecutive,
            jitter,
        );
        match decision {
            Decision::Delivered => {
                self.consecutive_failures = 0;
                self.queue
                    .events_delivered(&batch.event_ids, now_ms)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_delivered(events, now_ms);
                debug!(contact, events, elapsed = ?posted.elapsed, "webhook delivered");
                Ok(Outcome::Delivered {
                    contact_id: batch.contact_id,
                    events,
                })
            }
            Decision::Retry {
                at_ms,
                error,
                hold,
                kind,
            } => {
                self.consecutive_failures = consecutive;
                self.hold(hold);
                self.queue
                    .events_retry(&batch.event_ids, at_ms, &error)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_failure(kind, &error, now_ms);
                warn!(contact, events, attempt = failures, retry_in_ms = at_ms - now_ms,
                      kind = kind.label(), %error, "webhook failed; will retry");
                Ok(Outcome::Retrying {
                    contact_id: batch.contact_id,
                    events,
                    at_ms,
                })
            }
            Decision::Dead { error, hold, kind } => {
                self.consecutive_failures = consecutive;
                self.hold(hold);
                self.queue
                    .events_dead(&batch.event_ids, &error)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_failure(kind, &error, now_ms);
                self.metrics.record_dead(events);
                match kind {
                    FailureKind::Unauthorized => error!(
                        contact, events, %error,
                        "respond.io rejected the API token; events parked as dead \
                         (fix the token, then `smsgate status --retry-dead`)"
                    ),
                    _ => error!(contact, events, kind = kind.label(), %error,
                                "webhook events parked as dead"),
                }
                Ok(Outcome::Dead {
                    contact_id: batch.contact_id,
                    events,
                    error,
                })
            }
        }
    }

    /// Runs until `shutdown`: steps while there is work, otherwise waits to be woken or for
    /// `idle_poll`. Cancelling mid-request is safe: delivery is at least once, so an event
    /// whose answer was not recorded is simply posted again later.
    pub async fn run(mut self, shutdown: CancellationToken) {
        info!(
            url = self.client.url(),
            rate = self.limiter.rate(),
            "webhook worker started"
        );
        loop {
            let step = tokio::select! {
                () = shutdown.cancelled() => break,
                step = self.try_one() => step,
            };
            match step {
                Ok(Outcome::Idle) => {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(self.options.idle_poll) => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    error!(%error, "webhook queue unavailable; retrying shortly");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        info!("webhook worker stopped");
    }

    fn hold(&self, hold: Option<Duration>) {
        if let Some(hold) = hold {
            self.limiter.hold_until(tokio::time::Instant::now() + hold);
        }
    }
}
