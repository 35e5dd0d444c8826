//! The pool of SIMs behind the one channel: one [`Member`] per `[[modems]]` entry (its driver
//! handle and its outbox [`Lane`]), and the router that gives every queued message a SIM and
//! moves the contacts of a SIM unusable for `routing.failover_after`.
//!
//! The router is one task. It wakes when the store signals outbound work, and once a second to
//! look at health: it routes what is unrouted ([`Store::route_outbound`]: sticky contacts keep
//! their SIM, a new contact goes to the usable SIM that can send soonest), runs failover for a
//! SIM unhealthy for `failover_after` since the router first saw it so ([`Store::fail_over`]),
//! and wakes the senders concerned. It never talks to a modem and never sends: each SIM's own
//! outbox does, so one hanging modem holds up only its own lane.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::RoutingConfig;
use crate::http::{BoxFuture, ModemSnapshot, PoolModemView, PoolProbe};
use crate::modem::{ModemHandle, ModemState};
use crate::outbox::Lane;
use crate::store::{RouteCandidate, Store, StoreError};

/// How often the router looks at the SIMs' health without being woken.
const LOOK_INTERVAL: Duration = Duration::from_secs(1);

/// One SIM of the pool.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Its port as configured (a device path or `tcp://HOST:PORT`).
    pub endpoint: String,
    pub modem: ModemHandle,
    pub lane: Arc<Lane>,
}

impl Member {
    /// Healthy, initialised and registered: it can send now (caps aside).
    pub fn usable(&self) -> bool {
        let health = self.modem.health();
        health.healthy && health.state == ModemState::Ready && health.registered
    }
}

/// Every SIM, in the order of the configuration, and how messages are spread over them.
#[derive(Debug, Clone)]
pub struct Pool {
    members: Vec<Member>,
    routing: RoutingConfig,
    clock: Clock,
    /// When the router first saw each SIM unusable (cleared when it is usable again).
    unusable_since: Arc<Mutex<HashMap<String, i64>>>,
    /// The SIMs the router has seen usable at least once.
    seen_usable: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Pool {
    pub fn new(members: Vec<Member>, routing: RoutingConfig) -> Self {
        Self {
            members,
            routing,
            clock: Clock::system(),
            unusable_since: Arc::default(),
            seen_usable: Arc::default(),
        }
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// What the router knows of each SIM now.
    pub fn candidates(&self, now_ms: i64) -> Vec<RouteCandidate> {
        self.members
            .iter()
            .map(|m| RouteCandidate {
                modem: m.name.clone(),
                usable: m.usable(),
                ready_at_ms: m.lane.ready_at_ms(now_ms),
                per_message_ms: m.lane.per_message_ms(),
            })
            .collect()
    }

    /// Since when SIM `name` has been unusable, as the router saw it (`None`: usable).
    pub fn unusable_since_ms(&self, name: &str) -> Option<i64> {
        self.unusable_since
            .lock()
            .expect("never poisoned")
            .get(name)
            .copied()
    }

    /// Every SIM as `/health`, `/metrics` and the dashboard show it; `queued` from `store`.
    pub async fn views(&self, store: &Store, now_ms: i64) -> Vec<PoolModemView> {
        let queued: HashMap<String, u64> = match store.queued_by_modem().await {
            Ok(rows) => rows.into_iter().collect(),
            Err(error) => {
                tracing::debug!(%error, "cannot read the queues per modem");
                HashMap::new()
            }
        };
        self.members
            .iter()
            .map(|m| {
                let usage = m.lane.usage(now_ms);
                let limits = m.lane.limits();
                let cap = |c: Option<std::num::NonZeroU32>| c.map(std::num::NonZeroU32::get);
                PoolModemView {
                    name: m.name.clone(),
                    endpoint: m.endpoint.clone(),
                    health: ModemSnapshot::from(&m.modem.health()),
                    usable: m.usable(),
                    unusable_since_ms: self.unusable_since_ms(&m.name),
                    queued: queued.get(&m.name).copied().unwrap_or(0),
                    sent_last_minute: usage.last_minute,
                    sent_last_hour: usage.last_hour,
                    sent_last_day: usage.last_day,
                    recipients_last_day: usage.recipients_last_day,
                    per_minute: cap(limits.per_minute),
                    per_hour: cap(limits.per_hour),
                    per_day: cap(limits.per_day),
                    recipients_per_day: cap(limits.recipients_per_day),
                    next_send_at_ms: m.lane.ready_at_ms(now_ms),
                    per_message_ms: m.lane.per_message_ms(),
                }
            })
            .collect()
    }

    /// One round: note health, route, fail over, wake the senders with new work.
    pub async fn route_once(&self, store: &Store) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let candidates = self.candidates(now);
        let mut failing = Vec::new();
        {
            let mut since = self.unusable_since.lock().expect("never poisoned");
            for candidate in &candidates {
                if candidate.usable {
                    let first_time = self
                        .seen_usable
                        .lock()
                        .expect("never poisoned")
                        .insert(candidate.modem.clone());
                    if since.remove(&candidate.modem).is_some() && !first_time {
                        tracing::info!(modem = %candidate.modem, "the SIM is usable again");
                    }
                    continue;
                }
                let first = *since.entry(candidate.modem.clone()).or_insert_with(|| {
                    // A SIM still starting is not news; one that could send and stopped is.
                    let was_usable = self
                        .seen_usable
                        .lock()
                        .expect("never poisoned")
                        .contains(&candidate.modem);
                    if was_usable {
                        tracing::warn!(modem = %candidate.modem,
                            "the SIM is unusable (unhealthy, not initialised or not registered)");
                    } else {
                        tracing::debug!(modem = %candidate.modem, "the SIM is not usable yet");
                    }
                    now
                });
                if let Some(after) = self.routing.failover_after {
                    if now.saturating_sub(first) >= after.as_millis() as i64 {
                        failing.push(candidate.modem.clone());
                    }
                }
            }
        }
        let names: Vec<String> = candidates.iter().map(|c| c.modem.clone()).collect();
        let mut woken: Vec<String> = Vec::new();
        for from in failing {
            let moved = store
                .fail_over(from.clone(), candidates.clone(), self.routing.sticky, now)
                .await?;
            for moved in &moved {
                tracing::warn!(contact = %moved.contact_id, from = %moved.from, to = %moved.to,
                    messages = moved.messages,
                    "failover: the contact's SIM has been unusable for routing.failover_after; \
                     their queued messages move, and they stay on the new SIM");
                woken.push(moved.to.clone());
            }
        }
        if store.has_unrouted(names).await? {
            let routed = store
                .route_outbound(candidates, self.routing.sticky, now)
                .await?;
            for routed in &routed {
                tracing::debug!(m_id = %routed.m_id, modem = %routed.modem,
                    sticky = routed.sticky, "routed");
                woken.push(routed.modem.clone());
            }
        }
        woken.sort();
        woken.dedup();
        for name in woken {
            if let Some(member) = self.member(&name) {
                member.lane.wake();
            }
        }
        Ok(())
    }

    /// Routes until `shutdown`: on every outbound signal (a new message, a retry, a recovery)
    /// and at least once a second. Every sender is woken on a signal too, for retries that are
    /// already routed.
    pub async fn run(self, store: Store, shutdown: CancellationToken) {
        let signal = store.outbound_signal();
        loop {
            let notified = signal.notified();
            if let Err(error) = self.route_once(&store).await {
                tracing::error!(%error, "routing failed; retrying shortly");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = notified => {
                    for member in &self.members {
                        member.lane.wake();
                    }
                }
                () = tokio::time::sleep(LOOK_INTERVAL) => {}
            }
        }
    }
}

/// The pool with the store its queues are read from, as `/health` and `/metrics` see it.
pub struct PoolView {
    pub pool: Pool,
    pub store: Store,
}

impl PoolProbe for PoolView {
    fn modems(&self, now_ms: i64) -> BoxFuture<'_, Vec<PoolModemView>> {
        Box::pin(self.pool.views(&self.store, now_ms))
    }
}
