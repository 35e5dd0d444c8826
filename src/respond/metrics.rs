//! Counters the webhook worker keeps for `GET /metrics` and `GET /health`: requests, events
//! delivered and dead, failures by kind, request latency (a Prometheus histogram), the last
//! error, requests in flight, and the fault that pauses delivery (a refused token or URL). Plain atomics, shared through an `Arc`; they live only in memory (the durable
//! counts — pending, dead — are the store's).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::retry::FailureKind;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const KINDS: [FailureKind; 5] = [
    FailureKind::RateLimited,
    FailureKind::Transient,
    FailureKind::Unauthorized,
    FailureKind::NotFound,
    FailureKind::Rejected,
];

/// The webhook worker's in-memory counters.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    requests: AtomicU64,
    events_delivered: AtomicU64,
    events_dead: AtomicU64,
    failures: [AtomicU64; KINDS.len()],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    last_success_ms: AtomicI64,
    last_error: Mutex<Option<LastError>>,
    in_flight: AtomicU64,
    fault: Mutex<Option<String>>,
}

/// The most recent failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub at_ms: i64,
    pub message: String,
}

impl WebhookMetrics {
    /// One request answered (any status) or failed, and how long it took.
    pub fn record_request(&self, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn record_delivered(&self, events: usize, now_ms: i64) {
        self.events_delivered
            .fetch_add(events as u64, Ordering::Relaxed);
        self.last_success_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn record_failure(&self, kind: FailureKind, message: &str, now_ms: i64) {
        let index = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.failures[index].fetch_add(1, Ordering::Relaxed);
        *self.lock_last_error() = Some(LastError {
            at_ms: now_ms,
            message: message.to_owned(),
        });
    }

    pub fn record_dead(&self, events: usize) {
        self.events_dead.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Requests on their way now.
    pub fn set_in_flight(&self, requests: usize) {
        self.in_flight.store(requests as u64, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Delivery is paused by a fault of the configuration (`reason` says which and the fix),
    /// or runs again (`None`).
    pub fn set_fault(&self, reason: Option<String>) {
        *lock(&self.fault) = reason;
    }

    /// Why delivery is paused, if it is.
    pub fn fault(&self) -> Option<String> {
        lock(&self.fault).clone()
    }

    /// The last failure, if the last request did not succeed after it.
    pub fn current_error(&self) -> Option<LastError> {
        let last_success = self.last_success_ms.load(Ordering::Relaxed);
        self.lock_last_error()
            .clone()
            .filter(|error| error.at_ms >= last_success)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn events_delivered(&self) -> u64 {
        self.events_delivered.load(Ordering::Relaxed)
    }

    pub fn failures(&self, kind: FailureKind) -> u64 {
        let index = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.failures[index].load(Ordering::Relaxed)
    }

    /// Appends the Prometheus text exposition (format 0.0.4) of these counters.
    pub fn write_prometheus(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_requests_total Webhook requests made to respond.io.\n\
             # TYPE smsgate_webhook_requests_total counter\n\
             smsgate_webhook_requests_total {}",
            self.requests()
        );
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_events_delivered_total Events respond.io accepted.\n\
             # TYPE smsgate_webhook_events_delivered_total counter\n\
             smsgate_webhook_events_delivered_total {}",
            self.events_delivered()
        );
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_events_dead_total Events parked as dead since start.\n\
             # TYPE smsgate_webhook_events_dead_total counter\n\
             smsgate_webhook_events_dead_total {}",
            self.events_dead.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_failures_total Failed webhook requests by kind.\n\
             # TYPE smsgate_webhook_failures_total counter"
        );
        for kind in KINDS {
            let _ = writeln!(
                out,
                "smsgate_webhook_failures_total{{kind=\"{}\"}} {}",
                kind.label(),
                self.failures(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_request_duration_seconds Webhook request latency.\n\
             # TYPE smsgate_webhook_request_duration_seconds histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "smsgate_webhook_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP smsgate_webhook_in_flight Webhook requests on their way now.\n\
             # TYPE smsgate_webhook_in_flight gauge\n\
             smsgate_webhook_in_flight {}\n\
             # HELP smsgate_webhook_paused 1 while respond.io refuses the API token or the webhook \
             URL and delivery is paused.\n\
             # TYPE smsgate_webhook_paused gauge\n\
             smsgate_webhook_paused {}",
            self.in_flight(),
            u8::from(self.fault().is_some())
        );
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "smsgate_webhook_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             smsgate_webhook_request_duration_seconds_sum {sum}\n\
             smsgate_webhook_request_duration_seconds_count {count}"
        );
    }

    fn lock_last_error(&self) -> std::sync::MutexGuard<'_, Option<LastError>> {
        lock(&self.last_error)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only assignments happen under these locks; a poisoned one still holds a whole value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_errors_clear_on_success() {
        let metrics = WebhookMetrics::default();
        metrics.record_request(Duration::from_millis(30));
        metrics.record_request(Duration::from_millis(700));
        metrics.record_failure(FailureKind::Transient, "HTTP 503", 10);
        let mut text = String::new();
        metrics.write_prometheus(&mut text);
        assert!(text.contains("smsgate_webhook_request_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("smsgate_webhook_request_duration_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("smsgate_webhook_request_duration_seconds_count 2\n"));
        assert!(text.contains("smsgate_webhook_failures_total{kind=\"transient\"} 1\n"));
        assert_eq!(
            metrics.current_error().map(|e| e.message),
            Some("HTTP 503".into())
        );
        metrics.record_delivered(3, 11);
        assert_eq!(metrics.current_error(), None);
        assert_eq!(metrics.events_delivered(), 3);
    }

    #[test]
    fn a_fault_shows_as_paused_until_cleared() {
        let metrics = WebhookMetrics::default();
        let paused = |metrics: &WebhookMetrics| {
            let mut text = String::new();
            metrics.write_prometheus(&mut text);
            text.contains("smsgate_webhook_paused 1\n")
        };
        assert!(!paused(&metrics));
        metrics.set_fault(Some("respond.io rejects the API token".into()));
        metrics.record_failure(FailureKind::NotFound, "HTTP 404", 1);
        metrics.set_in_flight(3);
        let mut text = String::new();
        metrics.write_prometheus(&mut text);
        assert!(text.contains("smsgate_webhook_failures_total{kind=\"not_found\"} 1\n"));
        assert!(text.contains("smsgate_webhook_in_flight 3\n"));
        assert!(paused(&metrics));
        metrics.set_fault(None);
        assert!(!paused(&metrics));
        assert_eq!(metrics.fault(), None);
    }
}
