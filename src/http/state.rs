//! What the HTTP handlers need from the rest of smsgate, as small seams tests can fake: the
//! database ([`Backend`], implemented by `store::Store`, speaking the store's own types), the
//! modem's health ([`ModemProbe`], fed by `modem::Health`), and the settings ([`Settings`]).
//!
//! It also keeps the in-memory request counters and a short-lived cache of the outbox depth, so
//! a burst of `POST /message` does not ask the database for its depth on every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;

use crate::modem::ModemState;
use crate::respond::WebhookMetrics;
use crate::store::{NewOutbound, OutboxStats, StoreError, StoreStatus, Totals, WebhookStats};

/// A boxed `Send` future, so the seams below can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The database, as the HTTP API needs it: the commit behind `POST /message` and the figures
/// behind `/health` and `/metrics`, in the store's own types.
pub trait Backend: Send + Sync + 'static {
    /// Commits one outbound message (fsync'd) and returns its new `mId`.
    fn enqueue(&self, message: NewOutbound) -> BoxFuture<'_, Result<String, StoreError>>;
    fn outbox_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<OutboxStats, StoreError>>;
    fn webhook_stats(&self, now_ms: i64) -> BoxFuture<'_, Result<WebhookStats, StoreError>>;
    /// Lifetime counters; `None` when the backend does not keep them.
    fn totals(&self) -> BoxFuture<'_, Result<Option<Totals>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
    /// The database's health now (cheap: no database round trip); `None` when there is no
    /// disk behind the backend.
    fn status(&self) -> Option<StoreStatus> {
        None
    }
}

/// The modem's health as `/health` and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModemSnapshot {
    pub state: ModemState,
    /// The modem loop works (the daemon pings the systemd watchdog only then).
    pub healthy: bool,
    /// The SIM answered `READY` (PIN entered or none needed).
    pub sim_ready: bool,
    /// The SIM state in words (`READY`, `SIM PIN`, `SIM PUK`, `not inserted`).
    pub sim: String,
    pub registered: bool,
    /// Registration in words ("home", "roaming", "searching", "denied").
    pub registration: String,
    pub operator: Option<String>,
    pub signal_dbm: Option<i32>,
    pub resets: u64,
    pub reopens: u64,
    pub timeouts: u64,
    pub last_error: Option<String>,
    /// The SIM's balance as last read by USSD (`balance_ussd`), and why the last check failed.
    pub balance: Option<crate::modem::Balance>,
    pub balance_error: Option<String>,
    /// Incoming calls, and those with the number withheld.
    pub calls: u64,
    pub calls_withheld: u64,
}

/// One SIM of a pool as `/health` (details) and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolModemView {
    /// `[[modems]] name`.
    pub name: String,
    /// Its port: a device path or `tcp://HOST:PORT`.
    pub endpoint: String,
    pub health: ModemSnapshot,
    /// Healthy, initialised and registered: it can send now (caps aside).
    pub usable: bool,
    /// Since when the daemon has seen it unusable (failover counts from here).
    pub unusable_since_ms: Option<i64>,
    /// Messages routed to it and not finished.
    pub queued: u64,
    /// Parts it sent in the last sliding minute, hour and 24 h, and its caps (`None`: no cap).
    pub sent_last_minute: u32,
    pub sent_last_hour: u32,
    pub sent_last_day: u32,
    pub recipients_last_day: u32,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub recipients_per_day: Option<u32>,
    /// When its pacing lets its next message start (Unix ms; at or before now: at once).
    pub next_send_at_ms: i64,
    /// About how long one message takes on it (send time or pacing, the longer).
    pub per_message_ms: i64,
}

impl PoolModemView {
    /// About how long until this SIM has sent what is routed to it.
    pub fn drain_ms(&self, now_ms: i64) -> i64 {
        if self.queued == 0 {
            return 0;
        }
        (self.next_send_at_ms - now_ms).max(0)
            + (self.queued as i64).saturating_mul(self.per_message_ms)
    }
}

/// Where the pool's per-SIM figures come from.
pub trait PoolProbe: Send + Sync + 'static {
    fn modems(&self, now_ms: i64) -> BoxFuture<'_, Vec<PoolModemView>>;
}

/// About how long until the outbox is drained: the SIMs send side by side, so the slowest.
pub fn drain_estimate_ms(modems: &[PoolModemView], now_ms: i64) -> i64 {
    modems.iter().map(|m| m.drain_ms(now_ms)).max().unwrap_or(0)
}

/// Where the modem's health comes from.
pub trait ModemProbe: Send + Sync + 'static {
    fn snapshot(&self) -> ModemSnapshot;
}

impl ModemProbe for tokio::sync::watch::Receiver<ModemSnapshot> {
    fn snapshot(&self) -> ModemSnapshot {
        self.borrow().clone()
    }
}

/// The modem driver's health channel (`ModemHandle::health_watch`) as the API's probe.
impl ModemProbe for tokio::sync::watch::Receiver<crate::modem::Health> {
    fn snapshot(&self) -> ModemSnapshot {
        ModemSnapshot::from(&*self.borrow())
    }
}

impl From<&crate::modem::Health> for ModemSnapshot {
    fn from(health: &crate::modem::Health) -> Self {
        Self {
            state: health.state,
            healthy: health.healthy,
            sim_ready: health.sim.eq_ignore_ascii_case("READY"),
            sim: health.sim.clone(),
            registered: health.registered,
            registration: health.registration.clone(),
            operator: health.operator.clone(),
            signal_dbm: health.signal_dbm,
            resets: health.resets,
            reopens: health.reopens,
            timeouts: health.timeouts,
            last_error: health.last_error.clone(),
            balance: health.balance.clone(),
            balance_error: health.balance_error.clone(),
            calls: health.calls,
            calls_withheld: health.calls_withheld,
        }
    }
}

/// The settings of the HTTP API.
#[derive(Clone)]
pub struct Settings {
    pub channel_id: String,
    pub api_token: String,
    pub body_limit: usize,
    /// Reading and checking a request (not its commit: see `message`) must finish within this.
    pub request_timeout: Duration,
    pub max_queue_depth: u64,
    pub max_queue_age: Duration,
    pub max_parts: usize,
    pub smart_encoding: bool,
    /// `/health` reports the outbox unhealthy when its oldest message waited longer.
    pub health_outbox_age: Duration,
    /// `/health` reports the webhook backlog unhealthy when its oldest event waited longer.
    pub health_webhook_age: Duration,
    /// How long the outbox depth read from the database is reused (plus what was accepted
    /// since), so a burst does not count rows on every request.
    pub queue_stats_ttl: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("channel_id", &self.channel_id)
            .field("api_token", &"<redacted>")
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("max_queue_depth", &self.max_queue_depth)
            .field("max_queue_age", &self.max_queue_age)
            .field("max_parts", &self.max_parts)
            .field("smart_encoding", &self.smart_encoding)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The settings from the configuration (token already resolved).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            channel_id: config.respond.channel_id.clone(),
            api_token: config.api_token().to_owned(),
            body_limit: config.http.body_limit,
            request_timeout: config.http.request_timeout,
            max_queue_depth: config.http.max_queue_depth,
            max_queue_age: config.http.max_queue_age,
            max_parts: config.sms.max_parts,
            smart_encoding: config.sms.smart_encoding,
            health_outbox_age: Duration::from_secs(30 * 60),
            health_webhook_age: Duration::from_secs(15 * 60),
            queue_stats_ttl: Duration::from_millis(250),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub backend: Arc<dyn Backend>,
    pub modem: Arc<dyn ModemProbe>,
    /// Every SIM of the pool (`None`: a state without a pool, as in some tests).
    pub pool: Option<Arc<dyn PoolProbe>>,
    pub webhook: Arc<WebhookMetrics>,
    pub counters: Counters,
    queue_cache: Mutex<Option<CachedStats>>,
}

#[derive(Clone, Copy)]
struct CachedStats {
    fetched: Instant,
    stats: OutboxStats,
    /// `counters.accepted` when the depth was read.
    accepted_at_fetch: u64,
    /// A request is reading the depth now.
    refreshing: bool,
}

/// In-memory counters of the HTTP API.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub rejected_client: AtomicU64,
    pub rejected_full: AtomicU64,
    pub errors: AtomicU64,
}

impl AppState {
    pub fn new(
        settings: Settings,
        backend: Arc<dyn Backend>,
        modem: Arc<dyn ModemProbe>,
        webhook: Arc<WebhookMetrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                backend,
                modem,
                pool: None,
                webhook,
                counters: Counters::default(),
                queue_cache: Mutex::new(None),
            }),
        }
    }

    /// Shows every SIM of the pool in `/health` and `/metrics`. Called while building the
    /// state, before it is shared.
    pub fn with_pool(mut self, pool: Arc<dyn PoolProbe>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_pool is called before the state is shared")
            .pool = Some(pool);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}

impl Inner {
    /// The outbox depth and age, from the cache when it is fresh (its depth raised by what was
    /// accepted since it was read, so the estimate never lags behind a burst).
    ///
    /// Only one request refreshes an expired cache; the others go on with the estimate
    /// meanwhile. Without that, every request in flight would read the depth at the same
    /// moment, and each read ends the store's group commit.
    pub(crate) async fn queue_stats(&self, now_ms: i64) -> Result<OutboxStats, StoreError> {
        let ttl = self.settings.queue_stats_ttl;
        let accepted_now = self.counters.accepted.load(Ordering::Relaxed);
        {
            let mut cache = self.lock_cache();
            if let Some(cached) = cache.as_mut() {
                if cached.refreshing || cached.fetched.elapsed() < ttl {
                    let mut stats = cached.stats;
                    let since = accepted_now.saturating_sub(cached.accepted_at_fetch);
                    stats.queued += since;
                    if stats.oldest_queued_ms.is_none() && since > 0 {
                        stats.oldest_queued_ms = Some(now_ms);
                    }
                    return Ok(stats);
                }
                cached.refreshing = true;
            }
        }
        let result = self.backend.outbox_stats(now_ms).await;
        let mut cache = self.lock_cache();
        match result {
            Ok(stats) => {
                // Messages accepted while the depth was read may be counted twice: the bound
                // errs on the safe side.
                *cache = Some(CachedStats {
                    fetched: Instant::now(),
                    stats,
                    accepted_at_fetch: accepted_now,
                    refreshing: false,
                });
                Ok(stats)
            }
            Err(error) => {
                if let Some(cached) = cache.as_mut() {
                    cached.refreshing = false;
                }
                Err(error)
            }
        }
    }

    /// Counts one committed message (into the depth estimate too).
    pub(crate) fn note_accepted(&self) {
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<CachedStats>> {
        // Plain assignments only; a poisoned lock still holds a whole value.
        self.queue_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts depth reads; each takes a while, like a busy database.
    #[derive(Default)]
    struct SlowOutbox {
        reads: AtomicU64,
    }

    impl Backend for SlowOutbox {
        fn enqueue(&self, _message: NewOutbound) -> BoxFuture<'_, Result<String, StoreError>> {
            Box::pin(async { Ok("m".to_owned()) })
        }
        fn outbox_stats(&self, _now_ms: i64) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(OutboxStats {
                    queued: 7,
                    ..OutboxStats::default()
                })
            })
        }
        fn webhook_stats(&self, _now_ms: i64) -> BoxFuture<'_, Result<WebhookStats, StoreError>> {
            Box::pin(async { Ok(WebhookStats::default()) })
        }
    }

    struct NoModem;
    impl ModemProbe for NoModem {
        fn snapshot(&self) -> ModemSnapshot {
            ModemSnapshot::default()
        }
    }

    fn settings(ttl: Duration) -> Settings {
        Settings {
            channel_id: "c".into(),
            api_token: "t".into(),
            body_limit: 1024,
            request_timeout: Duration::from_secs(1),
            max_queue_depth: 10,
            max_queue_age: Duration::from_secs(60),
            max_parts: 10,
            smart_encoding: true,
            health_outbox_age: Duration::from_secs(60),
            health_webhook_age: Duration::from_secs(60),
            queue_stats_ttl: ttl,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_request_refreshes_the_depth_while_the_others_use_the_estimate() {
        let outbox = Arc::new(SlowOutbox::default());
        let state = AppState::new(
            settings(Duration::from_millis(100)),
            outbox.clone(),
            Arc::new(NoModem),
            Arc::default(),
        );
        let first = state.inner.queue_stats(0).await.expect("stats");
        assert_eq!(first.queued, 7);
        state.inner.note_accepted();
        state.inner.note_accepted();
        tokio::time::sleep(Duration::from_millis(150)).await; // the cache expires
        let mut requests = Vec::new();
        for _ in 0..20 {
            let state = state.clone();
            requests.push(tokio::spawn(async move {
                state.inner.queue_stats(0).await.expect("stats").queued
            }));
        }
        for request in requests {
            // Either the fresh read (7) or the estimate (7 + the 2 accepted since).
            let queued = request.await.expect("task");
            assert!(queued == 7 || queued == 9, "{queued}");
        }
        assert_eq!(outbox.reads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_modem_health_channel_is_a_probe() {
        let health = crate::modem::Health {
            state: crate::modem::ModemState::Unplugged,
            healthy: false,
            sim: "READY".into(),
            registered: false,
            registration: "searching".into(),
            signal_dbm: Some(-99),
            resets: 2,
            last_error: Some("port closed".into()),
            ..crate::modem::Health::default()
        };
        let (sender, receiver) = tokio::sync::watch::channel(health);
        let snapshot = receiver.snapshot();
        assert_eq!(snapshot.state, ModemState::Unplugged);
        assert!(!snapshot.healthy && snapshot.sim_ready && !snapshot.registered);
        assert_eq!(snapshot.signal_dbm, Some(-99));
        assert_eq!(snapshot.resets, 2);
        assert_eq!(snapshot.last_error.as_deref(), Some("port closed"));
        sender.send_modify(|health| health.sim = "SIM PIN".into());
        assert!(!receiver.snapshot().sim_ready);
    }
}
