//! Continuous-refill token bucket, the way providers describe their limits: capacity is
//! the per-minute limit, refilled at limit/60 per second.
//!
//! Hand-written rather than taken from `governor`: the mock must report the bucket's
//! exact level and time-to-full in response headers, and later dimensions charge
//! variable costs and refund reservations, none of which a GCRA limiter exposes.

use std::time::{Duration, Instant};

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

/// `retry-after` in whole seconds: rounded up (waiting less would be refused again),
/// and at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Formats a duration the way Go's `time.Duration.String` does, which is what OpenAI's
/// `x-ratelimit-reset-*` headers carry: `0s`, `12ms`, `1s`, `6m0s`, `2m59.56s`.
/// Rounded to the millisecond first, as the headers are.
pub fn go_duration(d: Duration) -> String {
    let ms = (d.as_secs_f64() * 1000.0).round() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = format!("{}.{:03}", rest / 1000, rest % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_match_the_reference_examples() {
        let cases = [
            (0.0, "0s"),
            (0.012, "12ms"),
            (1.0, "1s"),
            (360.0, "6m0s"),
            (179.56, "2m59.56s"),
            (3600.5, "1h0m0.5s"),
            (0.0004, "0s"),
        ];
        for (secs, want) in cases {
            assert_eq!(go_duration(Duration::from_secs_f64(secs)), want, "{secs}");
        }
    }

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
    fn reset_header_example_from_the_reference() {
        // 5000 RPM with 4999 left resets in 12 ms.
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(5000, t0);
        bucket.force_take(1.0, t0);
        assert_eq!(go_duration(bucket.time_to_full(t0)), "12ms");
        assert_eq!(bucket.remaining(t0), 4999);
    }
}
