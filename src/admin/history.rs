//! The last hour of the modem's signal, for the dashboard's sparkline: a ring buffer in
//! memory, sampled from the modem's health watch every [`SAMPLE_INTERVAL`]. It starts empty
//! at every start of the daemon; nothing of it is stored.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::modem::Health;

/// How often the signal is sampled (the modem driver refreshes it every 30 s).
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// How far back the sparkline goes.
pub(crate) const SPAN: Duration = Duration::from_secs(3600);

/// One sample: when, and the signal then (`None`: unknown, e.g. unplugged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Sample {
    pub at_ms: i64,
    pub dbm: Option<i32>,
}

/// The ring buffer.
#[derive(Debug)]
pub(crate) struct SignalHistory {
    samples: Mutex<VecDeque<Sample>>,
    capacity: usize,
}

impl Default for SignalHistory {
    fn default() -> Self {
        let capacity = (SPAN.as_secs() / SAMPLE_INTERVAL.as_secs()) as usize + 1;
        Self {
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }
}

impl SignalHistory {
    pub(crate) fn record(&self, sample: Sample) {
        let mut samples = self.lock();
        if samples.len() == self.capacity {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples of the last [`SPAN`] before `now_ms`, oldest first.
    pub(crate) fn last_hour(&self, now_ms: i64) -> Vec<Sample> {
        let since = now_ms - SPAN.as_millis() as i64;
        self.lock()
            .iter()
            .filter(|sample| sample.at_ms >= since)
            .copied()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        // push/pop only; a poisoned buffer is still whole.
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Samples `health` into `history` until `shutdown`.
pub(crate) async fn sample(
    history: std::sync::Arc<SignalHistory>,
    health: watch::Receiver<Health>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let dbm = {
            let health = health.borrow();
            health.signal_dbm.filter(|_| health.healthy)
        };
        history.record(Sample {
            at_ms: chrono::Utc::now().timestamp_millis(),
            dbm,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_hour_and_drops_the_oldest() {
        let history = SignalHistory::default();
        let step = SAMPLE_INTERVAL.as_millis() as i64;
        for n in 0..(history.capacity as i64 + 10) {
            history.record(Sample {
                at_ms: n * step,
                dbm: Some(-70 - (n % 5) as i32),
            });
        }
        let now = (history.capacity as i64 + 9) * step;
        let hour = history.last_hour(now);
        assert_eq!(hour.len(), history.capacity);
        assert_eq!(hour.first().map(|s| s.at_ms), Some(10 * step));
        assert!(hour.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert!(
            history
                .last_hour(now + 2 * SPAN.as_millis() as i64)
                .is_empty()
        );
    }
}
