//! What the webhook worker does after one attempt, as pure functions: success, retry later
//! (exponential backoff with jitter, or the server's `Retry-After`), or park the events as dead.
//!
//! The rules (DESIGN.md §2): 2xx is success; `429` honours `Retry-After` (so does a 5xx that
//! sends one); 5xx, `408`,
//! timeouts and connection errors are transient and retried until the oldest event of the batch
//! is older than `max_age`. `401`/`403` (the API token) and `404`/`410` (the webhook URL) are
//! faults of the configuration, not of the events: the events stay queued, every request pauses
//! and one tries again each `fault_pause`, up to `max_age`. Every other status (4xx, and 3xx
//! since a webhook that redirects is misconfigured) is a rejection of these events, logged
//! loudly and parked without retrying. No I/O and no clock here: the caller passes `now` and
//! the jitter.

use std::time::Duration;

/// How one attempt ended, as far as the retry rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// respond.io answered with this status.
    Status {
        code: u16,
        /// `Retry-After`, when the answer carried a readable one.
        retry_after: Option<Duration>,
        /// The start of the answer's body, for the log and `last_error`.
        body: String,
    },
    /// No answer within the request timeout.
    Timeout,
    /// The request never got an answer: DNS, TCP, TLS, a reset connection.
    Connection(String),
}

/// The retry settings of the webhook worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubles with each further one.
    pub base_delay: Duration,
    /// Longest delay between two attempts of one batch.
    pub max_delay: Duration,
    /// Events older than this (since first queued) are parked dead instead of retried.
    pub max_age: Duration,
    /// Longest `Retry-After` honoured as such (a larger one is cut to this).
    pub max_retry_after: Duration,
    /// While respond.io refuses the token (`401`/`403`) or the webhook URL (`404`/`410`), no
    /// request at all for this long after each refusal: one request tries again this often,
    /// and the events wait, none parked as dead for it.
    pub fault_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(3 * 24 * 3600),
            max_retry_after: Duration::from_secs(3600),
            fault_pause: Duration::from_secs(60),
        }
    }
}

/// The decision for one batch after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: the events are delivered.
    Delivered,
    /// Try the same events again, not before `at_ms`. `hold` = no request to anyone before
    /// then either (rate limited, or respond.io is failing).
    Retry {
        at_ms: i64,
        error: String,
        hold: Option<Duration>,
        kind: FailureKind,
    },
    /// Give up on these events.
    Dead {
        error: String,
        hold: Option<Duration>,
        kind: FailureKind,
    },
}

/// Why an attempt failed, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `429 Too Many Requests`.
    RateLimited,
    /// 5xx, 408, timeout, connection error.
    Transient,
    /// 401 / 403: the API token is wrong. Pauses all delivery.
    Unauthorized,
    /// 404 / 410: nothing at the webhook URL. Pauses all delivery.
    NotFound,
    /// Any other status: respond.io refuses these events.
    Rejected,
}

impl FailureKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Rejected => "rejected",
        }
    }

    /// `true` for the faults of the configuration (token, URL) that pause every request, not
    /// only this batch's.
    pub fn pauses_delivery(self) -> bool {
        matches!(self, Self::Unauthorized | Self::NotFound)
    }
}

impl RetryPolicy {
    /// The delay before attempt `failures + 1` of one batch, `failures ≥ 1` failures so far:
    /// `base · 2^(failures-1)`, capped at `max_delay`, then "equal jitter" (half fixed, half
    /// random, `jitter` in `[0, 1)`) so contacts that failed together do not retry together.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        full / 2 + full.mul_f64(jitter) / 2
    }

    /// Decides what to do with a batch after `attempt`.
    ///
    /// `failures` counts this failure too (the store's attempt counter plus one);
    /// `first_enqueued_ms` is when the batch's oldest event was queued; `consecutive` counts
    /// the worker's failures in a row across batches (for the global hold while respond.io
    /// is down).
    pub fn decide(
        &self,
        attempt: &Attempt,
        failures: u32,
        first_enqueued_ms: i64,
        now_ms: i64,
        consecutive: u32,
        jitter: f64,
    ) -> Decision {
        let (kind, error, retry_after) = match attempt {
            Attempt::Status { code, .. } if (200..300).contains(code) => {
                return Decision::Delivered;
            }
            Attempt::Status {
                code: 429,
                retry_after,
                body,
            } => (
                FailureKind::RateLimited,
                describe(429, body),
                retry_after.map(|after| after.min(self.max_retry_after)),
            ),
            // A 503 may say when to come back (RFC 9110 §10.2.3); it is honoured like a 429's.
            Attempt::Status {
                code,
                body,
                retry_after,
            } if *code >= 500 || *code == 408 => (
                FailureKind::Transient,
                describe(*code, body),
                retry_after.map(|after| after.min(self.max_retry_after)),
            ),
            Attempt::Status {
                code: code @ (401 | 403),
                body,
                ..
            } => (
                FailureKind::Unauthorized,
                format!(
                    "respond.io rejects the API token ({})",
                    describe(*code, body)
                ),
                None,
            ),
            Attempt::Status {
                code: code @ (404 | 410),
                body,
                ..
            } => (
                FailureKind::NotFound,
                format!(
                    "respond.io answers {} at the webhook URL",
                    describe(*code, body)
                ),
                None,
            ),
            Attempt::Status { code, body, .. } => {
                let hint = if (300..400).contains(code) {
                    "; respond.webhook_url redirects: set it to the final URL"
                } else {
                    ""
                };
                return Decision::Dead {
                    error: format!(
                        "respond.io rejected the events ({}){hint}",
                        describe(*code, body)
                    ),
                    hold: None,
                    kind: FailureKind::Rejected,
                };
            }
            Attempt::Timeout => (
                FailureKind::Transient,
                "no answer from respond.io within the request timeout".to_owned(),
                None,
            ),
            Attempt::Connection(detail) => (
                FailureKind::Transient,
                format!("cannot reach respond.io: {detail}"),
                None,
            ),
        };
        let delay = if kind.pauses_delivery() {
            self.fault_pause
        } else {
            retry_after.unwrap_or_else(|| self.backoff(failures, jitter))
        };
        let age_ms = now_ms.saturating_sub(first_enqueued_ms);
        let max_age_ms = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        let hold = match (kind, retry_after) {
            (FailureKind::RateLimited, _) | (_, Some(_)) => Some(delay),
            (FailureKind::Unauthorized | FailureKind::NotFound, _) => Some(self.fault_pause),
            // Everyone else's events would most likely fail the same way: wait before the
            // next request, growing with the failures in a row.
            _ => Some(self.backoff(consecutive.max(1), jitter)),
        };
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if age_ms.saturating_add(delay_ms) > max_age_ms {
            return Decision::Dead {
                error: format!(
                    "gave up after {failures} attempts over {}: {error}",
                    humanize(Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)))
                ),
                hold,
                kind,
            };
        }
        // A paused batch is due again at once: the hold keeps every request back, and once the
        // fault is fixed nothing should wait out a delay of its own.
        let at_ms = if kind.pauses_delivery() {
            now_ms
        } else {
            now_ms.saturating_add(delay_ms)
        };
        Decision::Retry {
            at_ms,
            error,
            hold,
            kind,
        }
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to
/// `now` (Unix seconds). A date in the past means "now".
pub fn parse_retry_after(value: &str, now_unix_s: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = date.timestamp().saturating_sub(now_unix_s).max(0);
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

fn describe(code: u16, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {body}")
    }
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Attempt {
        Attempt::Status {
            code,
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_within_half() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(policy.backoff(4, 0.5), Duration::from_secs(6));
        assert_eq!(policy.backoff(40, 1.0), Duration::from_secs(600));
        assert_eq!(policy.backoff(u32::MAX, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn every_2xx_is_delivered() {
        let policy = RetryPolicy::default();
        for code in [200, 201, 202, 204, 299] {
            assert_eq!(
                policy.decide(&status(code), 1, 0, 0, 0, 0.5),
                Decision::Delivered
            );
        }
    }

    #[test]
    fn transient_failures_retry_with_backoff_and_hold() {
        let policy = RetryPolicy::default();
        for attempt in [
            status(500),
            status(502),
            status(503),
            status(408),
            Attempt::Timeout,
            Attempt::Connection("connection refused".into()),
        ] {
            match policy.decide(&attempt, 3, 0, 10_000, 2, 1.0) {
                Decision::Retry {
                    at_ms, hold, kind, ..
                } => {
                    assert_eq!(at_ms, 14_000, "{attempt:?}");
                    assert_eq!(hold, Some(Duration::from_secs(2)), "{attempt:?}");
                    assert_eq!(kind, FailureKind::Transient);
                }
                other => panic!("{attempt:?} → {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_requests_honours_retry_after() {
        let policy = RetryPolicy::default();
        let attempt = Attempt::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(7)),
            body: String::new(),
        };
        assert_eq!(
            policy.decide(&attempt, 1, 0, 1_000, 0, 0.0),
            Decision::Retry {
                at_ms: 8_000,
                error: "HTTP 429".into(),
                hold: Some(Duration::from_secs(7)),
                kind: FailureKind::RateLimited,
            }
        );
        let far = Attempt::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(86_400)),
            body: String::new(),
        };
        match policy.decide(&far, 1, 0, 0, 0, 0.0) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 3_600_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_server_error_with_retry_after_is_honoured_too() {
        let policy = RetryPolicy::default();
        let attempt = Attempt::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(30)),
            body: String::new(),
        };
        match policy.decide(&attempt, 1, 0, 0, 5, 0.0) {
            Decision::Retry {
                at_ms, hold, kind, ..
            } => {
                assert_eq!(at_ms, 30_000);
                assert_eq!(hold, Some(Duration::from_secs(30)));
                assert_eq!(kind, FailureKind::Transient);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_past_the_maximum_age_are_dead() {
        let policy = RetryPolicy::default();
        let three_days_ms = 3 * 24 * 3600 * 1000;
        match policy.decide(&status(503), 50, 0, three_days_ms, 50, 0.0) {
            Decision::Dead { error, kind, .. } => {
                assert_eq!(kind, FailureKind::Transient);
                assert!(error.starts_with("gave up after 50 attempts over 3 days: HTTP 503"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_token_or_url_keeps_the_events_and_pauses_everything() {
        let policy = RetryPolicy::default();
        for (code, kind, start) in [
            (
                401,
                FailureKind::Unauthorized,
                "respond.io rejects the API token (HTTP 401",
            ),
            (
                403,
                FailureKind::Unauthorized,
                "respond.io rejects the API token (HTTP 403",
            ),
            (404, FailureKind::NotFound, "respond.io answers HTTP 404"),
            (410, FailureKind::NotFound, "respond.io answers HTTP 410"),
        ] {
            // Many attempts already: a fault of the configuration never parks them by itself.
            match policy.decide(&status(code), 500, 0, 10_000, 500, 0.0) {
                Decision::Retry {
                    at_ms,
                    error,
                    hold,
                    kind: got,
                } => {
                    assert!(error.starts_with(start), "{code}: {error}");
                    assert_eq!(at_ms, 10_000, "{code}: due again once the pause is over");
                    assert_eq!(hold, Some(policy.fault_pause), "{code}");
                    assert_eq!(got, kind, "{code}");
                    assert!(kind.pauses_delivery());
                }
                other => panic!("{code} → {other:?}"),
            }
        }
    }

    #[test]
    fn a_refused_token_still_gives_up_after_the_maximum_age() {
        let policy = RetryPolicy::default();
        let almost_three_days_ms = 3 * 24 * 3600 * 1000 - 30_000;
        match policy.decide(&status(401), 4000, 0, almost_three_days_ms, 4000, 0.0) {
            Decision::Dead { error, hold, kind } => {
                assert!(
                    error
                        .starts_with("gave up after 4000 attempts over 2 days: respond.io rejects"),
                    "{error}"
                );
                assert_eq!(hold, Some(policy.fault_pause));
                assert_eq!(kind, FailureKind::Unauthorized);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_client_errors_and_redirects_are_dead_without_retrying() {
        let policy = RetryPolicy::default();
        for code in [400, 405, 413, 422, 301, 302] {
            match policy.decide(
                &Attempt::Status {
                    code,
                    retry_after: None,
                    body: "bad payload".into(),
                },
                1,
                0,
                0,
                0,
                0.0,
            ) {
                Decision::Dead {
                    error, hold, kind, ..
                } => {
                    assert!(
                        error.contains(&format!("HTTP {code}: bad payload")),
                        "{error}"
                    );
                    assert_eq!(hold, None);
                    assert_eq!(kind, FailureKind::Rejected);
                    assert!(!kind.pauses_delivery());
                }
                other => panic!("{code} → {other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(" 120 ", 0),
            Some(Duration::from_secs(120))
        );
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 (RFC 9110's example).
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
