//! The webhook worker: takes due batches of ONE contact's events from the queue, posts them, and
//! records each outcome (delivered, retry later, paused, dead) — one step at a time
//! ([`Worker::try_one`]) or as a loop with several requests in flight ([`Worker::run`]).
//!
//! - **Per-contact order** holds because a contact never has two requests in flight (the queue
//!   skips contacts whose request is on its way) and the queue only hands out a contact's
//!   head-of-line events ([`EventQueue::next_event_batch`]); a contact is free again only once
//!   its outcome is recorded.
//! - **The rate** holds because one dispatching loop takes a token from the [`RateLimiter`]
//!   before it starts each request, however many are in flight.
//! - **Lanes** are the queue's: it hands out the contact whose waiting events matter most (a
//!   reply before receipts). The dispatcher chooses the batch just before its token, so a reply
//!   that arrives during a backlog waits for at most one free slot and one token.
//! - **Failures** slow everything: after a failed request only one request is in flight until
//!   one succeeds, and the limiter holds every request for the backoff (or `Retry-After`). A
//!   refused token or webhook URL (401/403, 404/410) pauses all delivery: one request tries
//!   again every `fault_pause`, `/health` says why, and nothing is parked for it until
//!   `max_age`.
//!
//! What it does not do: build events (the inbox and outbox do) or keep them (the store does).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::RespondError;
use super::client::WebhookClient;
use super::metrics::WebhookMetrics;
use super::ratelimit::RateLimiter;
use super::retry::{Decision, FailureKind, RetryPolicy};
use crate::clock::Clock;
use crate::phone::mask;
use crate::store::EventBatch;

/// A batch whose token took longer than this is chosen again before it leaves: during a hold
/// (a `429`, a pause) a reply may have arrived that should go first.
const RECHOOSE_AFTER: Duration = Duration::from_millis(200);

/// At shutdown, how long requests already on their way may take to finish and have their
/// outcome recorded. An answer that is not recorded is harmless (the events are posted again
/// after the restart) but a duplicate; the gateway's shutdown deadline is longer than this.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// The durable webhook queue, as the worker needs it: it hands out the store's
/// [`EventBatch`]es. `smsgate::store::Store` implements it; tests use an in-memory queue.
pub trait EventQueue: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next due batch: the oldest pending events of one contact not in `busy` whose
    /// head-of-line event is due; never an event before an earlier pending event of the same
    /// contact. Among the due contacts, the one with an inbound `message` waiting goes first,
    /// then `message_echo`, then receipts (the store's lanes).
    fn next_event_batch(
        &self,
        now_ms: i64,
        max_events: usize,
        busy: &[String],
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
    /// Most requests on their way at once (each for another contact).
    pub max_in_flight: usize,
    /// How often an idle worker looks for events that became due (retries) without being
    /// woken.
    pub idle_poll: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            max_events_per_request: 20,
            max_in_flight: 8,
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
                fault_pause: config.pause_retry_interval,
                ..RetryPolicy::default()
            },
            max_in_flight: config.max_in_flight,
            ..Self::default()
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
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
    /// respond.io refused the token or the URL: the events stay queued and all delivery pauses
    /// (`reason` is what `/health` shows).
    Paused {
        contact_id: String,
        events: usize,
        reason: String,
    },
    /// The events were parked as dead.
    Dead {
        contact_id: String,
        events: usize,
        error: String,
    },
}

/// The webhook worker.
pub struct Worker<Q> {
    inner: Inner<Q>,
    /// Raised when events are queued, so an idle worker need not poll.
    wake: Arc<Notify>,
}

/// What every request task shares: the queue, the client, the limiter and the state of
/// delivery as a whole.
struct Inner<Q> {
    queue: Arc<Q>,
    client: WebhookClient,
    limiter: Arc<RateLimiter>,
    options: Arc<WorkerOptions>,
    metrics: Arc<WebhookMetrics>,
    clock: Clock,
    state: Arc<Mutex<DeliveryState>>,
}

impl<Q> Clone for Inner<Q> {
    fn clone(&self) -> Self {
        Self {
            queue: Arc::clone(&self.queue),
            client: self.client.clone(),
            limiter: Arc::clone(&self.limiter),
            options: Arc::clone(&self.options),
            metrics: Arc::clone(&self.metrics),
            clock: self.clock.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

/// How delivery as a whole is going, across contacts.
#[derive(Debug, Default)]
struct DeliveryState {
    /// Failures in a row, for the hold while respond.io is down.
    consecutive_failures: u32,
    /// Counts the failures that raised `consecutive_failures`. A request started before the
    /// latest of them failed in the same outage: it does not raise the count again, so eight
    /// requests in flight when respond.io goes down count as one failure, as one request would.
    epoch: u64,
    /// After a failure, one request at a time until one succeeds.
    probing: bool,
    /// The fault pausing all delivery (a refused token or URL), if any.
    fault: Option<FailureKind>,
}

impl<Q: EventQueue> Worker<Q> {
    pub fn new(
        queue: Q,
        client: WebhookClient,
        limiter: Arc<RateLimiter>,
        options: WorkerOptions,
    ) -> Self {
        Self {
            inner: Inner {
                queue: Arc::new(queue),
                client,
                limiter,
                options: Arc::new(options),
                metrics: Arc::default(),
                clock: Clock::system(),
                state: Arc::default(),
            },
            wake: Arc::default(),
        }
    }

    /// A worker with the settings of `[respond]` (token already resolved): its own client,
    /// a token bucket of `rate_limit` requests per second without bursts, `max_in_flight`,
    /// `max_event_age`, `pause_retry_interval`.
    ///
    /// The limiter counts `rate_limit` requests over one second plus one request interval:
    /// requests that leave evenly spaced may still arrive a little bunched at respond.io, and
    /// the margin keeps any one second there within `rate_limit`.
    pub fn from_config(
        queue: Q,
        config: &crate::config::RespondConfig,
    ) -> Result<Self, RespondError> {
        let client = WebhookClient::new(&super::ClientOptions::from_config(config))?;
        let rate = config.rate_limit.max(1);
        let window = Duration::from_secs(1) + Duration::from_secs(1) / rate;
        Ok(Self::new(
            queue,
            client,
            Arc::new(RateLimiter::new(rate, 1).with_window(window)),
            WorkerOptions::from_config(config),
        ))
    }

    /// Uses another clock for the queue's timestamps (Unix ms).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.inner.clock = Clock::from_fn(clock);
        self
    }

    /// The counters this worker updates (for `/metrics` and `/health`).
    pub fn metrics(&self) -> Arc<WebhookMetrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// The limiter that paces this worker's requests (tests read its grants).
    pub fn limiter(&self) -> Arc<RateLimiter> {
        Arc::clone(&self.inner.limiter)
    }

    /// Idles on `notify` (the store's event signal, raised whenever an event is queued)
    /// instead of only polling.
    pub fn with_notify(mut self, notify: Arc<Notify>) -> Self {
        self.wake = notify;
        self
    }

    /// Posts the next due batch, if any, and records what happened (one request, waiting for
    /// it).
    pub async fn try_one(&mut self) -> Result<PostOutcome, RespondError> {
        let Some(batch) = self.inner.next_batch(&[]).await? else {
            return Ok(PostOutcome::Idle);
        };
        self.inner.limiter.acquire().await;
        let epoch = self.inner.epoch();
        self.inner.deliver(batch, epoch).await
    }

    /// Runs until `shutdown`, with up to `max_in_flight` requests on their way (one while
    /// respond.io is failing), each for another contact. Idle, it waits to be woken or for
    /// `idle_poll`. At shutdown the requests in flight get [`SHUTDOWN_DRAIN`] to finish;
    /// cancelling one after that is safe: delivery is at least once, so an event whose answer
    /// was not recorded is simply posted again later.
    pub async fn run(self, shutdown: CancellationToken) {
        info!(
            url = self.inner.client.url(),
            rate = self.inner.limiter.rate(),
            max_in_flight = self.inner.options.max_in_flight,
            "webhook worker started"
        );
        let mut dispatch = Dispatch {
            inner: self.inner,
            wake: self.wake,
            shutdown,
            tasks: JoinSet::new(),
            busy: HashMap::new(),
        };
        dispatch.run().await;
        // Stop taking new batches, but let the requests in flight record their outcome.
        let in_flight = dispatch.tasks.len();
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
            while let Some(done) = dispatch.tasks.join_next_with_id().await {
                dispatch.finished(done);
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                in_flight,
                "webhook requests still on their way at shutdown; their events go again after the restart"
            );
        }
        dispatch.tasks.shutdown().await;
        dispatch.inner.metrics.set_in_flight(0);
        info!("webhook worker stopped");
    }
}

/// The loop of [`Worker::run`]: chooses each batch, takes its token, and hands it to a task.
struct Dispatch<Q> {
    inner: Inner<Q>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    tasks: JoinSet<Result<PostOutcome, RespondError>>,
    /// The contact of each request in flight, by task.
    busy: HashMap<tokio::task::Id, String>,
}

/// A request task that ended, as `JoinSet::join_next_with_id` gives it.
type Finished =
    Result<(tokio::task::Id, Result<PostOutcome, RespondError>), tokio::task::JoinError>;

impl<Q: EventQueue> Dispatch<Q> {
    /// Returns when shutdown is requested.
    async fn run(&mut self) {
        loop {
            let mut queue_failed = false;
            while let Some(done) = self.tasks.try_join_next_with_id() {
                queue_failed |= self.finished(done);
            }
            if queue_failed && self.pause().await {
                return;
            }
            if self.busy.len() >= self.inner.in_flight_limit() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    Some(done) = self.tasks.join_next_with_id() => {
                        if self.finished(done) && self.pause().await {
                            return;
                        }
                    }
                }
                continue;
            }
            let contacts: Vec<String> = self.busy.values().cloned().collect();
            let batch = match self.inner.next_batch(&contacts).await {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    let idle_poll = self.inner.options.idle_poll;
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(idle_poll) => {}
                        Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                            if self.finished(done) && self.pause().await {
                                return;
                            }
                        }
                    }
                    continue;
                }
                Err(error) => {
                    error!(%error, "webhook queue unavailable; retrying shortly");
                    if self.pause().await {
                        return;
                    }
                    continue;
                }
            };
            let asked = tokio::time::Instant::now();
            match self.token().await {
                None => return,
                Some(false) => continue,
                Some(true) => {}
            }
            // A failure recorded meanwhile may have dropped the worker to one request at once.
            if self.busy.len() >= self.inner.in_flight_limit() {
                continue;
            }
            let batch = if asked.elapsed() > RECHOOSE_AFTER {
                match self.inner.next_batch(&contacts).await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => continue,
                    Err(error) => {
                        error!(%error, "webhook queue unavailable; retrying shortly");
                        continue;
                    }
                }
            } else {
                batch
            };
            let contact = batch.contact_id.clone();
            let epoch = self.inner.epoch();
            let task = self.inner.clone();
            let id = self
                .tasks
                .spawn(async move { task.deliver(batch, epoch).await })
                .id();
            self.busy.insert(id, contact);
            self.inner.metrics.set_in_flight(self.busy.len());
        }
    }

    /// Waits for a token: `Some(true)` to go on, `Some(false)` after a queue failure meanwhile
    /// (paused already; choose again), `None` at shutdown. The token may be far off (a hold):
    /// requests that finish meanwhile free their contacts at once.
    async fn token(&mut self) -> Option<bool> {
        let limiter = Arc::clone(&self.inner.limiter);
        let token = limiter.acquire();
        tokio::pin!(token);
        let mut queue_failed = false;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = &mut token => break,
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    queue_failed |= self.finished(done);
                }
            }
        }
        if queue_failed {
            return if self.pause().await {
                None
            } else {
                Some(false)
            };
        }
        Some(true)
    }

    /// Records a finished request task: its contact is free again. Returns `true` when the
    /// queue failed (the caller pauses before asking it again).
    fn finished(&mut self, done: Finished) -> bool {
        let failed = match done {
            Ok((id, result)) => {
                self.busy.remove(&id);
                match result {
                    Ok(_) => false,
                    Err(error) => {
                        // Not lost: the events are still pending and go again (at least once).
                        error!(%error, "webhook queue unavailable; retrying shortly");
                        true
                    }
                }
            }
            Err(join_error) => {
                self.busy.remove(&join_error.id());
                error!(error = %join_error, "a webhook request task failed; its events go again");
                false
            }
        };
        self.inner.metrics.set_in_flight(self.busy.len());
        failed
    }

    /// Waits a second (after a queue failure) unless shutdown comes first; `true` when it did.
    async fn pause(&self) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => true,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
        }
    }
}

impl<Q: EventQueue> Inner<Q> {
    async fn next_batch(&self, busy: &[String]) -> Result<Option<EventBatch>, RespondError> {
        self.queue
            .next_event_batch(
                self.clock.now_ms(),
                self.options.max_events_per_request.max(1),
                busy,
            )
            .await
            .map_err(RespondError::queue)
    }

    /// How many requests may be in flight now.
    fn in_flight_limit(&self) -> usize {
        if self.lock_state().probing {
            1
        } else {
            self.options.max_in_flight.max(1)
        }
    }

    fn epoch(&self) -> u64 {
        self.lock_state().epoch
    }

    /// Posts one batch (its token already taken) and records what happened. `epoch` is the
    /// failure count's epoch when the request started.
    async fn deliver(&self, batch: EventBatch, epoch: u64) -> Result<PostOutcome, RespondError> {
        let posted = self.client.post(&batch.contact_id, &batch.events).await;
        self.metrics.record_request(posted.elapsed);
        let now_ms = self.clock.now_ms();
        let events = batch.events.len();
        let contact = mask(&batch.contact_id);
        let failures = batch.attempts.saturating_add(1);
        let (consecutive, escalates) = {
            let state = self.lock_state();
            if state.epoch == epoch {
                (state.consecutive_failures.saturating_add(1), true)
            } else {
                (state.consecutive_failures.max(1), false)
            }
        };
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
                self.succeeded();
                self.queue
                    .events_delivered(&batch.event_ids, now_ms)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_delivered(events, now_ms);
                debug!(contact, events, elapsed = ?posted.elapsed, "webhook delivered");
                Ok(PostOutcome::Delivered {
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
                let reason = self.failed(kind, &error, consecutive, escalates);
                self.hold(hold);
                self.queue
                    .events_retry(&batch.event_ids, at_ms, &error)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_failure(kind, &error, now_ms);
                if let Some(reason) = reason {
                    return Ok(PostOutcome::Paused {
                        contact_id: batch.contact_id,
                        events,
                        reason,
                    });
                }
                warn!(contact, events, attempt = failures, retry_in_ms = at_ms - now_ms,
                      kind = kind.label(), %error, "webhook failed; will retry");
                Ok(PostOutcome::Retrying {
                    contact_id: batch.contact_id,
                    events,
                    at_ms,
                })
            }
            Decision::Dead { error, hold, kind } => {
                self.failed(kind, &error, consecutive, escalates);
                self.hold(hold);
                self.queue
                    .events_dead(&batch.event_ids, &error)
                    .await
                    .map_err(RespondError::queue)?;
                self.metrics.record_failure(kind, &error, now_ms);
                self.metrics.record_dead(events);
                error!(contact, events, kind = kind.label(), %error,
                       "webhook events parked as dead");
                Ok(PostOutcome::Dead {
                    contact_id: batch.contact_id,
                    events,
                    error,
                })
            }
        }
    }

    /// A request succeeded: full speed again, and any pause is over.
    fn succeeded(&self) {
        let resumed = {
            let mut state = self.lock_state();
            state.consecutive_failures = 0;
            state.probing = false;
            state.fault.take()
        };
        if resumed.is_some() {
            self.metrics.set_fault(None);
            info!("respond.io accepts webhooks again; delivery resumed");
        }
    }

    /// A request failed. Raises the failure count (once per outage epoch), drops to one request
    /// at a time unless respond.io only refused these events, and for a refused token or URL
    /// pauses delivery: returns the reason `/health` shows then.
    fn failed(
        &self,
        kind: FailureKind,
        error: &str,
        consecutive: u32,
        escalates: bool,
    ) -> Option<String> {
        let reason = kind
            .pauses_delivery()
            .then(|| self.fault_reason(kind, error));
        let new_fault = {
            let mut state = self.lock_state();
            if escalates {
                state.consecutive_failures = consecutive;
                state.epoch = state.epoch.wrapping_add(1);
            }
            if kind != FailureKind::Rejected {
                state.probing = true;
            }
            if kind.pauses_delivery() {
                state.fault.replace(kind) != Some(kind)
            } else {
                false
            }
        };
        if let Some(reason) = &reason {
            self.metrics.set_fault(Some(reason.clone()));
            if new_fault {
                error!(kind = kind.label(), "{reason}");
            } else {
                debug!(kind = kind.label(), %error, "webhook delivery still paused");
            }
        }
        reason
    }

    /// What `/health` and the log say while a refused token or URL pauses delivery.
    fn fault_reason(&self, kind: FailureKind, error: &str) -> String {
        let every = humantime::format_duration(self.options.retry.fault_pause);
        let url = self.client.url();
        match kind {
            FailureKind::NotFound => {
                let retired = if crate::config::is_retired_webhook_host(url) {
                    format!(
                        " ({} no longer takes webhooks; the URL is now normally {})",
                        crate::config::RETIRED_WEBHOOK_HOST,
                        crate::config::WEBHOOK_URL
                    )
                } else {
                    String::new()
                };
                format!(
                    "{error} {url}: webhook delivery is paused and tried again every {every}; \
                     paste the webhook URL respond.io shows under the channel's settings into \
                     respond.webhook_url{retired} and restart smsgate"
                )
            }
            _ => format!(
                "{error}: webhook delivery is paused and tried again every {every}; put the \
                 channel's API token (respond.io: Settings → Channels → the Custom Channel) \
                 into the token file (respond.api_token_file) and restart smsgate"
            ),
        }
    }

    fn hold(&self, hold: Option<Duration>) {
        if let Some(hold) = hold {
            self.limiter.hold_until(tokio::time::Instant::now() + hold);
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, DeliveryState> {
        // Only plain assignments happen under this lock; a poisoned one is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
