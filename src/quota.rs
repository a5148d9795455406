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
        TokenBucket::per_minute_of(limit as f64, now)
    }

    /// A full bucket for a per-minute limit that need not be whole (a share of a quota).
    pub fn per_minute_of(limit: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: limit,
            per_second: limit / 60.0,
            level: limit,
            updated: now,
        }
    }

    /// Units refilled per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
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

/// A metered dimension of a provider's per-minute quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Requests,
    /// OpenAI's TPM.
    Tokens,
    InputTokens,
    OutputTokens,
}

impl Dimension {
    /// What a request of `prompt` tokens asking for at most `max_output` costs this
    /// dimension when it is admitted, as providers meter it: one request; OpenAI's
    /// tokens max(`max_tokens`, prompt tokens); the prompt for input tokens; output
    /// tokens reserved from `max_tokens` (the unused part refunded when it ends).
    pub fn admission_cost(self, prompt: u32, max_output: u32) -> f64 {
        match self {
            Dimension::Requests => 1.0,
            Dimension::Tokens => f64::from(max_output.max(prompt)),
            Dimension::InputTokens => f64::from(prompt),
            Dimension::OutputTokens => f64::from(max_output),
        }
    }
}

impl Dimension {
    /// What a request leaves charged once it has ended: its admission cost, except
    /// output tokens, of which only the `generated` stay charged (a reservation's unused
    /// part is refunded; counted as generated, nothing more is charged).
    pub fn settled_cost(self, prompt: u32, max_output: u32, generated: u32) -> f64 {
        match self {
            Dimension::OutputTokens => f64::from(generated),
            _ => self.admission_cost(prompt, max_output),
        }
    }
}

/// One per-minute limit as a planner sees it: a bucket of `capacity`, full at the
/// start, refilled at `per_second`; the same rule [`TokenBucket`] enforces, solved for
/// times and rates instead of stepped through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    pub capacity: f64,
    pub per_second: f64,
}

impl Allowance {
    /// `share` (0 to 1) of a per-minute limit.
    pub fn per_minute(limit: f64, share: f64) -> Allowance {
        Allowance {
            capacity: limit * share,
            per_second: limit * share / 60.0,
        }
    }

    /// Requests per second it sustains when each leaves `cost` charged.
    pub fn sustained_rate(&self, cost: f64) -> f64 {
        match cost > 0.0 {
            true => self.per_second / cost,
            false => f64::INFINITY,
        }
    }

    /// Seconds from the start until requests costing `total` in all, sent in order as
    /// fast as it admits them, are all admitted: the full bucket goes at once, the rest
    /// as it refills.
    pub fn last_admission(&self, total: f64) -> f64 {
        ((total - self.capacity) / self.per_second).max(0.0)
    }

    /// Seconds until a client sending `rate` requests a second, each costing `cost`,
    /// has emptied the bucket; `None` if the refill keeps up.
    pub fn dry_after(&self, rate: f64, cost: f64) -> Option<f64> {
        let net = rate * cost - self.per_second;
        (net > 0.0).then(|| self.capacity / net)
    }

    /// The per-minute limit whose bucket admits requests costing `total` in all within
    /// `seconds` of a full start (at `share` of it).
    pub fn limit_for(total: f64, seconds: f64, share: f64) -> f64 {
        total / (share * (1.0 + seconds.max(0.0) / 60.0))
    }
}

/// Several buckets of one quota charged together, all or nothing: a request goes only
/// when every bucket covers its cost, as a provider admits one. A client-side limiter
/// built from the provider's own numbers (scaled by a headroom) and charged before each
/// request is sent, so the provider's buckets, refilling at least as fast and holding at
/// least as much, always cover what it sends.
#[derive(Debug, Clone)]
pub struct Quota {
    buckets: Vec<(Dimension, TokenBucket)>,
}

impl Quota {
    /// Full buckets of `share` (0 to 1) of each per-minute limit.
    pub fn new(limits: &[(Dimension, u64)], share: f64, now: Instant) -> Quota {
        Quota {
            buckets: limits
                .iter()
                .map(|&(d, limit)| (d, TokenBucket::per_minute_of(limit as f64 * share, now)))
                .collect(),
        }
    }

    /// How long until every bucket covers a request of `prompt` and `max_output`
    /// tokens; `None` if they do now. A cost above a bucket's capacity is capped at the
    /// capacity, so an oversized request waits for a full bucket instead of forever.
    pub fn wait(&mut self, prompt: u32, max_output: u32, now: Instant) -> Option<Duration> {
        self.buckets
            .iter_mut()
            .filter_map(|(d, bucket)| {
                let cost = d.admission_cost(prompt, max_output).min(bucket.capacity);
                bucket.shortfall(cost, now)
            })
            .max()
    }

    /// Charges a request to every bucket (after [`Quota::wait`] said it may go).
    pub fn take(&mut self, prompt: u32, max_output: u32, now: Instant) {
        for (d, bucket) in &mut self.buckets {
            bucket.force_take(d.admission_cost(prompt, max_output), now);
        }
    }

    /// Gives back the output tokens reserved but not generated.
    pub fn refund_output(&mut self, unused: u32, now: Instant) {
        for (d, bucket) in &mut self.buckets {
            if *d == Dimension::OutputTokens {
                bucket.refund(f64::from(unused), now);
            }
        }
    }

    /// Requests per second the slowest bucket sustains for requests of this size: the
    /// limiter's rate.
    pub fn rate(&self, prompt: u32, max_output: u32) -> f64 {
        self.buckets
            .iter()
            .map(|(d, bucket)| bucket.per_second / d.admission_cost(prompt, max_output).max(1.0))
            .fold(f64::INFINITY, f64::min)
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

    #[test]
    fn a_quota_charges_every_bucket_and_waits_for_the_slowest() {
        let t0 = Instant::now();
        // 600 RPM and 60,000 TPM at 98 %: 588 requests, 58,800 tokens, refilled at
        // 9.8 requests and 980 tokens a second.
        let limits = [(Dimension::Requests, 600), (Dimension::Tokens, 60_000)];
        let mut quota = Quota::new(&limits, 0.98, t0);
        // A request of 300 prompt tokens and 500 max_tokens costs 500 tokens: the token
        // bucket is the tighter one, 117 requests (58,500 tokens) then a wait.
        for _ in 0..117 {
            assert_eq!(quota.wait(300, 500, t0), None);
            quota.take(300, 500, t0);
        }
        let wait = quota.wait(300, 500, t0).unwrap();
        // 300 tokens left, 200 missing at 980 a second.
        assert!(
            (wait.as_secs_f64() - 200.0 / 980.0).abs() < 1e-9,
            "{wait:?}"
        );
        assert!((quota.rate(300, 500) - 980.0 / 500.0).abs() < 1e-9);
        // Small requests: the request bucket (9.8 a second) is the tighter one.
        assert!((quota.rate(10, 10) - 9.8).abs() < 1e-9);
        assert_eq!(quota.wait(10, 10, t0), None);
    }

    #[test]
    fn a_quota_at_a_providers_limit_never_asks_more_than_its_buckets_hold() {
        // The client's buckets (98 % of the quota) and the provider's (100 %), both full
        // at the start; the client sends whenever its own buckets allow, every 1 ms of a
        // simulated minute and a half: the provider's bucket always covers it.
        let t0 = Instant::now();
        let mut client = Quota::new(&[(Dimension::Requests, 600)], 0.98, t0);
        let mut provider = TokenBucket::per_minute(600, t0);
        let mut sent = 0;
        for ms in 0..90_000 {
            let now = t0 + Duration::from_millis(ms);
            while client.wait(1, 1, now).is_none() {
                client.take(1, 1, now);
                assert_eq!(provider.shortfall(1.0, now), None, "refused at {ms} ms");
                provider.force_take(1.0, now);
                sent += 1;
            }
        }
        // 588 at once, then 9.8 a second for 90 s (882), give or take the last one.
        assert!((1469..=1470).contains(&sent), "{sent}");
    }

    #[test]
    fn output_reservations_are_refunded_and_oversized_requests_wait_for_a_full_bucket() {
        let t0 = Instant::now();
        let mut quota = Quota::new(&[(Dimension::OutputTokens, 1000)], 1.0, t0);
        quota.take(10, 800, t0);
        assert!(quota.wait(10, 800, t0).is_some());
        // 700 of the 800 reserved were not generated.
        quota.refund_output(700, t0);
        assert_eq!(quota.wait(10, 800, t0), None);
        // 5,000 tokens cannot fit a bucket of 1,000: it goes when the bucket is full.
        let mut quota = Quota::new(&[(Dimension::OutputTokens, 1000)], 1.0, t0);
        assert_eq!(quota.wait(10, 5000, t0), None);
    }
}
