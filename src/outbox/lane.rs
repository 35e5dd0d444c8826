//! One SIM's lane of the outbox in a pool: the name its messages are routed under, its pacer
//! (interval, jitter, sliding-window caps) and the signal that wakes its sender.
//!
//! The outbox with a lane claims only the messages routed to its SIM, waits before claiming
//! until the pacer lets the next message start (so a waiting message stays `queued`, free to
//! follow its contact to another SIM), and asks the pacer again before each part. Each part is
//! appended to the SIM's send history in the transaction that marks it *submitting*, and only
//! then recorded in the pacer, so the caps hold across restarts. It does not route messages or
//! decide failover: the pool does ([`crate::pool`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::pacing::{Pacer, Usage};

/// One SIM's lane; cheap to share (the pool keeps one, its sender another).
#[derive(Debug)]
pub struct Lane {
    modem: String,
    pacer: Mutex<Pacer>,
    wake: Notify,
    /// The jitter drawn for the message the pacing was planned for: drawn once per message,
    /// not once per look.
    planned: Mutex<Option<(i64, Duration)>>,
}

impl Lane {
    pub fn new(modem: &str, pacer: Pacer) -> Arc<Self> {
        Arc::new(Self {
            modem: modem.to_owned(),
            pacer: Mutex::new(pacer),
            wake: Notify::new(),
            planned: Mutex::new(None),
        })
    }

    /// The SIM's name.
    pub fn modem(&self) -> &str {
        &self.modem
    }

    /// Wakes the sender (something was routed to it, or moved).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// When a message could start on this SIM, as the router compares SIMs.
    pub fn ready_at_ms(&self, now_ms: i64) -> i64 {
        self.pacer()
            .next_message(now_ms, 1, "", Duration::ZERO)
            .at_ms
    }

    /// About how long one message takes on this SIM: the send itself (a few seconds on a real
    /// network) or the pacing, whichever is longer.
    pub fn per_message_ms(&self) -> i64 {
        const TYPICAL_SEND_MS: i64 = 3_000;
        let pacer = self.pacer();
        let limits = pacer.limits();
        let spacing = (limits.min_interval + limits.jitter / 2).as_millis() as i64;
        let caps = [
            (limits.per_minute, crate::pacing::MINUTE_MS),
            (limits.per_hour, crate::pacing::HOUR_MS),
            (limits.per_day, crate::pacing::DAY_MS),
        ]
        .into_iter()
        .filter_map(|(cap, window)| cap.map(|cap| window / i64::from(cap.get())))
        .max()
        .unwrap_or(0);
        TYPICAL_SEND_MS.max(spacing).max(caps)
    }

    /// The SIM's use of its caps now.
    pub fn usage(&self, now_ms: i64) -> Usage {
        self.pacer().usage(now_ms)
    }

    /// The SIM's limits.
    pub fn limits(&self) -> crate::pacing::Limits {
        *self.pacer().limits()
    }

    /// When message `id` (of `parts` parts to `recipient`) may start.
    pub(super) fn message_slot(&self, now_ms: i64, id: i64, parts: u32, recipient: &str) -> i64 {
        let jitter = {
            let mut planned = self
                .planned
                .lock()
                .expect("the lane's lock is never poisoned");
            match *planned {
                Some((planned_id, jitter)) if planned_id == id => jitter,
                _ => {
                    let jitter = self.pacer().limits().jitter_sample(rand::random::<f64>());
                    *planned = Some((id, jitter));
                    jitter
                }
            }
        };
        self.pacer()
            .next_message(now_ms, parts, recipient, jitter)
            .at_ms
    }

    /// Whether `recipients_per_day` keeps a message to `recipient` from starting now (a new
    /// recipient while the day's are used up).
    pub(super) fn holds_new_recipient(&self, now_ms: i64, recipient: &str) -> bool {
        !self.pacer().recipient_fits(now_ms, recipient)
    }

    /// `None`: a part of `left` to `recipient` may go now; `Some(at)`: not before `at`.
    pub(super) fn part_wait(&self, now_ms: i64, left: u32, recipient: &str) -> Option<i64> {
        let pacer = self.pacer();
        if pacer.burst(now_ms, left, recipient) > 0 {
            return None;
        }
        Some(
            pacer
                .next_part(now_ms, left, recipient)
                .at_ms
                .max(now_ms + 1),
        )
    }

    /// Counts a part whose row is committed.
    pub(super) fn record(&self, at_ms: i64, recipient: &str, starts_message: bool) {
        self.pacer().record(at_ms, recipient, starts_message);
    }

    /// Moves a counted part to when the modem answered it ([`Pacer::restamp`]).
    pub(super) fn restamp(&self, from_ms: i64, to_ms: i64, recipient: &str) {
        self.pacer().restamp(from_ms, to_ms, recipient);
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer
            .lock()
            .expect("the pacer's lock is never poisoned")
    }
}
