//! Token-bucket arithmetic: a continuously refilled bucket, the way providers describe
//! their per-minute limits (capacity is the limit, refilled at limit/60 per second). It
//! owns the level, the refill, the debt and the waits; it knows nothing of HTTP, keys or
//! configuration, and imports nothing from the crate, so a server's limits, a client's
//! limiter and a quota planner can all share it.
//!
//! Hand-written rather than taken from `governor`: callers need the bucket's exact level
//! and time-to-full, variable costs and refunds, none of which a GCRA limiter exposes.

use std::time::{Duration, Instant};

/// A bucket of a per-minute limit; every method takes the time, so callers control it.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    level: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket for a per-minute limit.
    pub fn per_minute(limit: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: limit as f64,
            per_second: limit as f64 / 60.0,
            level: limit as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// How long until the bucket holds `cost`; `None` if it does now.
    pub fn shortfall(&mut self, cost: f64, now: Instant) -> Option<Duration> {
        self.refill(now);
        (self.level < cost).then(|| Duration::from_secs_f64((cost - self.level) / self.per_second))
    }

    /// Takes `cost` unconditionally; the level may go below zero (a debt refilled over
    /// time before anything else is admitted).
    pub fn force_take(&mut self, cost: f64, now: Instant) {
        self.refill(now);
        self.level -= cost;
    }

    /// Gives back `amount` (an unused reservation), up to the capacity.
    pub fn refund(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.level = (self.level + amount).min(self.capacity);
    }

    /// Whole units left, as the `remaining` headers report them.
    pub fn remaining(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.level.max(0.0).floor() as u64
    }

    /// Time until the bucket is full again, as the `reset` headers report it.
    pub fn time_to_full(&mut self, now: Instant) -> Duration {
        self.refill(now);
        Duration::from_secs_f64((self.capacity - self.level) / self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bucket_admits_a_minute_of_quota_then_refills_continuously() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(60, t0);
        for _ in 0..60 {
            assert_eq!(bucket.shortfall(1.0, t0), None);
            bucket.force_take(1.0, t0);
        }
        let wait = bucket.shortfall(1.0, t0).unwrap();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-9, "{wait:?}");
        // 60 RPM refills one request per second.
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(bucket.remaining(t1), 1);
        bucket.force_take(1.0, t1);
        assert_eq!(bucket.remaining(t1), 0);
        // Half a request left to refill: 0.5 s; the bucket is full 59.5 s later.
        let wait = bucket.shortfall(1.0, t1).unwrap();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9);
        assert!((bucket.time_to_full(t1).as_secs_f64() - 59.5).abs() < 1e-9);
        // A refund never fills past the capacity.
        bucket.refund(500.0, t1);
        assert_eq!(bucket.remaining(t1), 60);
    }

    #[test]
    fn time_to_full_is_what_is_missing_at_the_refill_rate() {
        // 5000 per minute with one taken is full again in 12 ms.
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(5000, t0);
        bucket.force_take(1.0, t0);
        assert!((bucket.time_to_full(t0).as_secs_f64() - 0.012).abs() < 1e-9);
        assert_eq!(bucket.remaining(t0), 4999);
    }
}
