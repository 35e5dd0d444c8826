//! The one clock smsgate reads: the wall clock in Unix milliseconds, the unit of every time the
//! database keeps and respond.io receives.
//!
//! The workers hold a [`Clock`], so tests give them a counter they move by hand; code that has
//! no clock to be given (the commands, the HTTP handlers, the gateway's housekeeping) calls
//! [`now_ms`]. Nothing else in smsgate reads the wall clock. Intervals and deadlines are not
//! wall-clock times: they use tokio's monotonic `Instant`.

use std::sync::Arc;

/// The wall clock now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A source of Unix milliseconds: the wall clock, or what a test says. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The wall clock ([`now_ms`]).
    pub fn system() -> Self {
        Self(Arc::new(now_ms))
    }

    /// A clock that reads `now` (tests).
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// Unix milliseconds now, by this clock.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_the_wall_clock_and_a_test_clock_is_its_own() {
        let before = chrono::Utc::now().timestamp_millis();
        let now = Clock::system().now_ms();
        assert!(now >= before && now - before < 60_000, "{now} vs {before}");
        let fixed = Clock::from_fn(|| 42);
        assert_eq!(fixed.clone().now_ms(), 42);
    }
}
