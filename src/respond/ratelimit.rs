//! A token bucket that paces outgoing webhook requests (respond.io publishes a limit of 20
//! requests per second per channel) and can be held shut for a while (a `429` with
//! `Retry-After`, or respond.io being down).
//!
//! It uses `tokio::time::Instant`, so tests run it under paused time. It paces its callers; it
//! does not queue them fairly (the webhook worker takes every token from one dispatching
//! loop, which hands requests to its concurrent tasks). Tests can have it log the instant of
//! every grant ([`RateLimiter::record_grants`]) to check the pace where it is decided.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `capacity` tokens, refilled at `rate` tokens per second; each request takes
/// one. With `capacity = 1` requests are evenly spaced `1/rate` apart. Whatever the capacity,
/// no window of one second (or of [`RateLimiter::with_window`]) ever holds more than `rate`
/// requests: the last `rate` grants are remembered, and a burst that would exceed that waits.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    capacity: f64,
    /// Requests allowed in any window.
    per_second: usize,
    /// The window `per_second` counts over: one second, or a little more for a margin.
    window: Duration,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    held_until: Option<Instant>,
    /// When the last `per_second` requests were let through, oldest first.
    recent: VecDeque<Instant>,
    /// Every grant since [`RateLimiter::record_grants`], if it was called.
    log: Option<Vec<Instant>>,
}

impl RateLimiter {
    /// `rate` requests per second (at least 1), bursts of at most `capacity` (at least 1).
    /// The bucket starts full.
    pub fn new(rate: u32, capacity: u32) -> Self {
        let capacity = f64::from(capacity.max(1));
        let per_second = rate.max(1) as usize;
        Self {
            rate: f64::from(rate.max(1)),
            capacity,
            per_second,
            window: Duration::from_secs(1),
            state: Mutex::new(Bucket {
                tokens: capacity,
                refilled_at: Instant::now(),
                held_until: None,
                recent: VecDeque::with_capacity(per_second),
                log: None,
            }),
        }
    }

    /// Counts `rate` requests over `window` instead of one second. A window a little longer
    /// than a second is a margin for the network: requests granted a second apart can arrive
    /// closer together at the far end (one waited longer for a connection than another), and
    /// the far end counts arrivals.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_secs(1));
        self
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes one token, or says how long to wait before asking again.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut bucket = self.lock();
        if let Some(until) = bucket.held_until {
            if now < until {
                return Err(until - now);
            }
            bucket.held_until = None;
        }
        if bucket.recent.len() >= self.per_second {
            if let Some(&oldest) = bucket.recent.front() {
                let window_ends = oldest + self.window;
                if now < window_ends {
                    return Err(window_ends - now);
                }
            }
        }
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.recent.push_back(now);
            if let Some(log) = &mut bucket.log {
                log.push(now);
            }
            while bucket.recent.len() > self.per_second {
                bucket.recent.pop_front();
            }
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            // Round up to whole microseconds so the retry never lands a hair too early.
            let micros = (missing / self.rate * 1e6).ceil();
            Err(Duration::from_micros(micros as u64).max(Duration::from_micros(1)))
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Lets no request through before `until` (later holds extend earlier ones, never shorten
    /// them). The bucket is emptied so requests resume at the paced rate, not in a burst.
    pub fn hold_until(&self, until: Instant) {
        let mut bucket = self.lock();
        if bucket.held_until.is_none_or(|held| held < until) {
            bucket.held_until = Some(until);
        }
        bucket.tokens = 0.0;
        bucket.refilled_at = bucket.refilled_at.max(until);
    }

    /// When the current hold ends, if one is in force at `now`.
    pub fn held_until(&self, now: Instant) -> Option<Instant> {
        self.lock().held_until.filter(|until| *until > now)
    }

    /// From now on, remembers the instant of every grant, for [`RateLimiter::grants`]. The
    /// pace a test can see at the far end is blurred by the network and the scheduler; the
    /// grants are what the limiter decided. The log grows without bound: not for production.
    pub fn record_grants(&self) {
        let mut bucket = self.lock();
        if bucket.log.is_none() {
            bucket.log = Some(Vec::new());
        }
    }

    /// The instants of the grants since [`RateLimiter::record_grants`], oldest first (empty if
    /// it was never called).
    pub fn grants(&self) -> Vec<Instant> {
        self.lock().log.clone().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The critical sections above cannot panic, so a poisoned lock still holds a
        // consistent bucket.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts, for every request, how many requests fall in the one-second window that starts
    /// with it; returns the largest count.
    fn busiest_second(times: &[Instant]) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_rate_in_any_second() {
        for rate in [1, 5, 20, 100] {
            let limiter = RateLimiter::new(rate, 1);
            let start = Instant::now();
            let mut times = Vec::new();
            for _ in 0..(rate * 3) {
                limiter.acquire().await;
                times.push(Instant::now());
            }
            assert_eq!(busiest_second(&times), rate as usize, "rate {rate}");
            let spent = times[times.len() - 1] - start;
            let expected = Duration::from_secs_f64(f64::from(rate * 3 - 1) / f64::from(rate));
            assert!(spent >= expected, "rate {rate}: {spent:?} < {expected:?}");
            assert!(
                spent < expected + Duration::from_millis(50),
                "rate {rate}: {spent:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_never_exceed_the_rate_in_any_second() {
        let limiter = RateLimiter::new(20, 20);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..70 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert_eq!(times[19], start, "the first burst goes at once");
        assert_eq!(busiest_second(&times), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_never_exceed_the_rate_in_any_window() {
        for (capacity, window) in [(1, 1000), (20, 1000), (1, 1050)] {
            let limiter = std::sync::Arc::new(
                RateLimiter::new(20, capacity).with_window(Duration::from_millis(window)),
            );
            let times = std::sync::Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (limiter, times) = (limiter.clone(), times.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..15 {
                        limiter.acquire().await;
                        times.lock().expect("times").push(Instant::now());
                        // Some work of varying length between requests, as a request would.
                        tokio::time::sleep(Duration::from_millis(7)).await;
                    }
                }));
            }
            for task in tasks {
                task.await.expect("task");
            }
            let mut times = times.lock().expect("times").clone();
            times.sort();
            assert_eq!(times.len(), 120);
            let window = Duration::from_millis(window);
            let busiest = (0..times.len())
                .map(|i| {
                    times[i..]
                        .iter()
                        .take_while(|t| t.duration_since(times[i]) < window)
                        .count()
                })
                .max()
                .unwrap_or(0);
            assert_eq!(busiest, 20, "capacity {capacity}, window {window:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_window_leaves_a_margin() {
        let limiter = RateLimiter::new(20, 1).with_window(Duration::from_millis(1050));
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire().await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(1050));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_capacity_lets_that_many_through_at_once() {
        let limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(Instant::now(), start);
        limiter.acquire().await;
        assert!(Instant::now() - start >= Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_stops_everything_until_it_ends() {
        let limiter = RateLimiter::new(20, 1);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.hold_until(start + Duration::from_secs(3));
        limiter.hold_until(start + Duration::from_secs(1)); // shorter: ignored
        assert_eq!(
            limiter.held_until(start),
            Some(start + Duration::from_secs(3))
        );
        limiter.acquire().await;
        let first = Instant::now() - start;
        limiter.acquire().await;
        let second = Instant::now() - start;
        assert!(first >= Duration::from_secs(3), "{first:?}");
        assert!(second - first >= Duration::from_millis(50), "{second:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn recorded_grants_are_the_instants_it_let_through() {
        let limiter = RateLimiter::new(10, 1);
        limiter.acquire().await;
        assert_eq!(limiter.grants(), [], "nothing before recording starts");
        limiter.record_grants();
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        let expected: Vec<Instant> = (1..=3)
            .map(|n| start + Duration::from_millis(100 * n))
            .collect();
        assert_eq!(limiter.grants(), expected);
    }

    #[test]
    fn try_acquire_says_how_long_to_wait() {
        let limiter = RateLimiter::new(4, 1);
        let now = Instant::now();
        assert_eq!(limiter.try_acquire(now), Ok(()));
        let wait = limiter.try_acquire(now).expect_err("bucket is empty");
        assert!(
            wait >= Duration::from_millis(249) && wait <= Duration::from_millis(251),
            "{wait:?}"
        );
        assert_eq!(
            limiter.try_acquire(now + Duration::from_millis(250)),
            Ok(())
        );
    }
}
