//! Carrier-safe pacing of one SIM: when its next message may start, and how many of a
//! message's parts may go back to back, given the SIM's limits and the history of its sends.
//!
//! Carriers block SIMs that send like machines: too fast (roughly faster than one SMS every few
//! seconds), too many in an hour or a day, or to too many different people in a day. A SIM's
//! [`Limits`] say what it may do: a minimum interval between the starts of two messages plus a
//! random jitter, caps on parts in any sliding 60 s, hour and 24 h, and a cap on distinct
//! recipients in any sliding 24 h.
//!
//! Pure code: no I/O, no clock and no randomness of its own. Times are Unix milliseconds (as
//! the store keeps them) passed in by the caller, and the jitter is a sample the caller draws
//! once per message. The history is a [`SendLog`] of [`Sent`] rows, one per part whose
//! `AT+CMGS` was written, so it can be loaded from the database at start-up: the caps hold
//! across restarts.
//!
//! # The guarantee
//! If a SIM's parts are sent one after another, each part is [recorded](Pacer::record) at a
//! time no earlier than the [`Pacer::burst`] that allowed it, and at most that many parts follow
//! one `burst`, then no sliding window of 60 s, one hour or 24 h holds more parts than its cap,
//! and no sliding 24 h more distinct recipients than `recipients_per_day` (the property tests
//! below simulate long schedules, with restarts, and check every window). A part counts in
//! every window that contains the moment its `AT+CMGS` was written; a window is half open, so
//! two parts exactly one window length apart are never in the same window.
//!
//! A recipient already counted in the last 24 h does not count again. A part recorded at a
//! time later than the caller's "now" (the clock went back, or a Pi without a real-time clock
//! booted with an old time) counts in every window until its own time has passed: waiting too
//! long is safe, sending too much is not.
//!
//! It does not choose a SIM, keep contacts on one, or hold a queue: that is the pool's job.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::time::Duration;

/// Sixty seconds, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Twenty-four hours, in milliseconds: the longest window, and how much history is kept.
pub const DAY_MS: i64 = 86_400_000;

/// What one SIM may do. Every field is optional in the configuration; absent means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At least this between the starts of two messages.
    pub min_interval: Duration,
    /// Plus a random `0..jitter` on top of `min_interval` (the caller draws the sample).
    pub jitter: Duration,
    /// Most parts in any sliding 60 s.
    pub per_minute: Option<NonZeroU32>,
    /// Most parts in any sliding hour.
    pub per_hour: Option<NonZeroU32>,
    /// Most parts in any sliding 24 h.
    pub per_day: Option<NonZeroU32>,
    /// Most distinct recipients in any sliding 24 h.
    pub recipients_per_day: Option<NonZeroU32>,
}

impl Limits {
    /// No pacing at all: every message may start at once, all its parts together.
    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }

    /// The jitter for `unit`, a uniform sample of `[0, 1)` the caller draws once per message:
    /// `unit × jitter` (clamped to `[0, jitter]`).
    pub fn jitter_sample(&self, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.jitter.mul_f64(unit)
    }

    /// The part caps as (window length in ms, cap).
    fn windows(&self) -> impl Iterator<Item = (i64, u32)> {
        [
            (MINUTE_MS, self.per_minute),
            (HOUR_MS, self.per_hour),
            (DAY_MS, self.per_day),
        ]
        .into_iter()
        .filter_map(|(length, cap)| cap.map(|cap| (length, cap.get())))
    }

    /// The smallest part cap, if any: a message with more parts cannot go in one burst.
    pub fn smallest_part_cap(&self) -> Option<u32> {
        self.windows().map(|(_, cap)| cap).min()
    }
}

/// One part whose `AT+CMGS` was written: a row of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When `AT+CMGS` was written, Unix milliseconds.
    pub at_ms: i64,
    /// Who it went to (any stable spelling: E.164 as the outbox keeps it).
    pub recipient: String,
    /// The first part of a message, or of a new attempt at one: `min_interval` separates these.
    pub starts_message: bool,
}

/// The history of one SIM's sends over the last 24 hours: the times of its parts, and when each
/// recipient was last sent to.
#[derive(Debug, Clone, Default)]
pub struct SendLog {
    /// Part times, ascending.
    parts: VecDeque<i64>,
    /// The latest part time per recipient.
    recipients: HashMap<String, i64>,
    /// The latest start of a message (kept even when older than 24 h).
    last_start_ms: Option<i64>,
}

impl SendLog {
    /// An empty history (a SIM that never sent).
    pub fn new() -> Self {
        Self::default()
    }

    /// The history from stored rows, in any order, dropping what is 24 h older than `now_ms`.
    pub fn from_rows(rows: impl IntoIterator<Item = Sent>, now_ms: i64) -> Self {
        let mut log = Self::new();
        for row in rows {
            log.record(row);
        }
        log.prune(now_ms);
        log
    }

    /// Adds one part. Rows may come in any order; the log stays sorted.
    pub fn record(&mut self, sent: Sent) {
        let at = sent.at_ms;
        if self.parts.back().is_none_or(|&last| last <= at) {
            self.parts.push_back(at);
        } else {
            let index = self.parts.partition_point(|&t| t <= at);
            self.parts.insert(index, at);
        }
        let last = self.recipients.entry(sent.recipient).or_insert(at);
        *last = (*last).max(at);
        if sent.starts_message {
            self.last_start_ms = Some(self.last_start_ms.map_or(at, |start| start.max(at)));
        }
    }

    /// Moves one part from `from_ms` to the later `to_ms`: the moment the modem answered its
    /// `AT+CMGS`. The network sees a part when it is submitted, which can be a while after the
    /// command was written and differ from part to part; counting each part until a window after
    /// its answer keeps every window the network sees within the cap too. A part not found (or
    /// a `to_ms` earlier than `from_ms`) changes nothing.
    pub fn restamp(&mut self, from_ms: i64, to_ms: i64, recipient: &str) {
        if to_ms <= from_ms {
            return;
        }
        let index = self.parts.partition_point(|&t| t < from_ms);
        if self.parts.get(index) != Some(&from_ms) {
            return;
        }
        self.parts.remove(index);
        let at = self.parts.partition_point(|&t| t <= to_ms);
        self.parts.insert(at, to_ms);
        if let Some(last) = self.recipients.get_mut(recipient) {
            *last = (*last).max(to_ms);
        }
        if self.last_start_ms == Some(from_ms) {
            self.last_start_ms = Some(to_ms);
        }
    }

    /// Forgets parts and recipients that no window ending at or after `now_ms` can contain.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(DAY_MS);
        let stale = self.parts.partition_point(|&t| t <= horizon);
        self.parts.drain(..stale);
        self.recipients.retain(|_, &mut last| last > horizon);
    }

    /// Parts sent after `since_ms` (a window's open start).
    pub fn parts_after(&self, since_ms: i64) -> u32 {
        let older = self.parts.partition_point(|&t| t <= since_ms);
        u32::try_from(self.parts.len() - older).unwrap_or(u32::MAX)
    }

    /// Distinct recipients sent to after `since_ms`.
    pub fn recipients_after(&self, since_ms: i64) -> u32 {
        let count = self.recipients.values().filter(|&&t| t > since_ms).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// `true` when `recipient` was sent to after `since_ms`.
    pub fn sent_to_after(&self, recipient: &str, since_ms: i64) -> bool {
        self.recipients
            .get(recipient)
            .is_some_and(|&last| last > since_ms)
    }

    /// When the latest message started.
    pub fn last_start_ms(&self) -> Option<i64> {
        self.last_start_ms
    }

    /// Parts held (those of the last 24 h, once pruned).
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// `true` when no part is held.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// When a message (or what is left of one) may start, and how many parts may then go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Unix milliseconds, never before the `now` asked about.
    pub at_ms: i64,
    /// Parts that may go back to back at `at_ms`: at least 1, at most the parts asked about.
    /// Fewer than asked only when a cap is smaller than the message.
    pub together: u32,
}

/// What a SIM has used of its caps, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Parts in the last 60 s.
    pub last_minute: u32,
    /// Parts in the last hour.
    pub last_hour: u32,
    /// Parts in the last 24 h.
    pub last_day: u32,
    /// Distinct recipients in the last 24 h.
    pub recipients_last_day: u32,
}

/// One SIM's limits and history, answering when it may send.
#[derive(Debug, Clone)]
pub struct Pacer {
    limits: Limits,
    log: SendLog,
}

impl Pacer {
    /// A SIM that has not sent anything.
    pub fn new(limits: Limits) -> Self {
        Self::with_log(limits, SendLog::new())
    }

    /// A SIM with the history `log` (e.g. [`SendLog::from_rows`] at start-up).
    pub fn with_log(limits: Limits, log: SendLog) -> Self {
        Self { limits, log }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn log(&self) -> &SendLog {
        &self.log
    }

    /// Records one part at the moment its `AT+CMGS` was written, and forgets what is more than
    /// 24 h older than it.
    pub fn record(&mut self, at_ms: i64, recipient: &str, starts_message: bool) {
        self.log.record(Sent {
            at_ms,
            recipient: recipient.to_owned(),
            starts_message,
        });
        self.log.prune(at_ms);
    }

    /// [`SendLog::restamp`] on this pacer's history.
    pub fn restamp(&mut self, from_ms: i64, to_ms: i64, recipient: &str) {
        self.log.restamp(from_ms, to_ms, recipient);
    }

    /// When the next message, of `parts` parts to `recipient`, may start: after `min_interval`
    /// plus `jitter` (a sample of `0..limits.jitter`, clamped to it) since the last message
    /// started, and once every cap has room for the whole message — or, for a message larger
    /// than a cap, for as many parts as that cap allows. `parts` of 0 counts as 1.
    pub fn next_message(&self, now_ms: i64, parts: u32, recipient: &str, jitter: Duration) -> Slot {
        let mut start = now_ms;
        let spacing = self.limits.min_interval + jitter.min(self.limits.jitter);
        if !spacing.is_zero() {
            if let Some(last) = self.log.last_start_ms() {
                start = start.max(last.saturating_add(millis(spacing)));
            }
        }
        self.slot_from(start, parts, recipient)
    }

    /// When the rest of a message already under way (`parts` parts left) may go on: no
    /// `min_interval` inside a message, only the caps.
    pub fn next_part(&self, now_ms: i64, parts: u32, recipient: &str) -> Slot {
        self.slot_from(now_ms, parts, recipient)
    }

    /// How many of `parts` parts to `recipient` may go back to back now without breaking a cap:
    /// 0 when not even one may. It does not look at `min_interval` (see [`Pacer::next_message`]).
    pub fn burst(&self, now_ms: i64, parts: u32, recipient: &str) -> u32 {
        let mut allowed = parts.max(1);
        for (length, cap) in self.limits.windows() {
            let used = self.log.parts_after(now_ms.saturating_sub(length));
            allowed = allowed.min(cap.saturating_sub(used));
        }
        if allowed > 0 && !self.recipient_fits(now_ms, recipient) {
            return 0;
        }
        allowed
    }

    /// What the SIM has used of its caps as of `now_ms`.
    pub fn usage(&self, now_ms: i64) -> Usage {
        Usage {
            last_minute: self.log.parts_after(now_ms.saturating_sub(MINUTE_MS)),
            last_hour: self.log.parts_after(now_ms.saturating_sub(HOUR_MS)),
            last_day: self.log.parts_after(now_ms.saturating_sub(DAY_MS)),
            recipients_last_day: self.log.recipients_after(now_ms.saturating_sub(DAY_MS)),
        }
    }

    /// The earliest moment from `earliest` at which the caps let `parts` parts (or a cap's worth)
    /// start together.
    fn slot_from(&self, earliest: i64, parts: u32, recipient: &str) -> Slot {
        let parts = parts.max(1);
        let mut at = earliest;
        for (length, cap) in self.limits.windows() {
            at = at.max(self.window_room_at(length, cap, parts.min(cap)));
        }
        // Last: the windows only get roomier later, but the recipient rule may not (the
        // recipient's own last send can leave the 24 h window), so it is checked at the moment
        // the windows settled on.
        if let Some(cap) = self.limits.recipients_per_day {
            at = self.recipient_room_at(at, recipient, cap.get());
        }
        let together = self.burst(at, parts, recipient);
        debug_assert!(together >= 1, "a slot always has room for a part");
        Slot {
            at_ms: at,
            together,
        }
    }

    /// The earliest moment at which a window of `length` ms holds at most `cap - need` parts.
    fn window_room_at(&self, length: i64, cap: u32, need: u32) -> i64 {
        let allowed = cap.saturating_sub(need) as usize;
        let parts = &self.log.parts;
        if parts.len() <= allowed {
            return i64::MIN;
        }
        // Counted at T: the parts after T − length. The (allowed + 1)-th most recent part
        // must have left: T ≥ its time + length.
        parts[parts.len() - allowed - 1].saturating_add(length)
    }

    /// `true` when sending to `recipient` at `at` keeps the distinct recipients of the 24 h
    /// window within the cap.
    pub fn recipient_fits(&self, at: i64, recipient: &str) -> bool {
        let Some(cap) = self.limits.recipients_per_day else {
            return true;
        };
        let since = at.saturating_sub(DAY_MS);
        self.log.sent_to_after(recipient, since) || self.log.recipients_after(since) < cap.get()
    }

    /// The earliest moment from `at` at which `recipient` fits within `cap` distinct recipients.
    fn recipient_room_at(&self, at: i64, recipient: &str, cap: u32) -> i64 {
        let since = at.saturating_sub(DAY_MS);
        if self.log.sent_to_after(recipient, since) {
            return at;
        }
        let mut others: Vec<i64> = self
            .log
            .recipients
            .iter()
            .filter(|(name, last)| name.as_str() != recipient && **last > since)
            .map(|(_, &last)| last)
            .collect();
        let allowed = cap.saturating_sub(1) as usize;
        if others.len() <= allowed {
            return at;
        }
        // Most recent first: the (allowed + 1)-th must leave the window.
        others.sort_unstable_by(|a, b| b.cmp(a));
        at.max(others[allowed].saturating_add(DAY_MS))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
