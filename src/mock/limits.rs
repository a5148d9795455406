//! Provider rate limits: per API key, one continuously refilled bucket per dimension.
//!
//! A request is admitted only if every bucket covers its charge, and then charged to all
//! at once; a refusal says how long until every bucket would (the largest wait). Output
//! tokens are either reserved from `max_tokens` at admission and the unused part
//! refunded when the response ends, or counted as they are generated (the bucket may
//! then run into debt, which later requests wait out).
//!
//! Owns the keys, their buckets (arithmetic in [`crate::quota`]) and the admission
//! decision; how a decision reads in headers and error bodies is each API's.

use crate::quota::TokenBucket;
use crate::scenario::{OtpmMode, RateLimitConfig};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use crate::quota::Dimension;

/// What one request asks of each dimension.
#[derive(Debug, Clone, Copy, Default)]
pub struct Charge {
    /// Prompt tokens.
    pub input: u32,
    /// The request's output cap.
    pub max_output: u32,
}

/// One bucket's state as the response headers report it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub dimension: Dimension,
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// Whether a request is admitted, and if not, why.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Admitted,
    Limited(RateLimited),
    /// The key's total quota is spent.
    QuotaExhausted,
}

/// A refusal by a rate limit: the dimension that refused, what the request asked of it,
/// and how long until every bucket would admit it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimited {
    pub dimension: Dimension,
    pub wait: Duration,
    pub requested: u64,
}

#[derive(Default)]
struct KeyState {
    buckets: HashMap<Dimension, TokenBucket>,
    requests_made: u64,
}

pub struct Limits {
    config: RateLimitConfig,
    keys: Mutex<HashMap<String, KeyState>>,
}

impl Limits {
    pub fn new(config: RateLimitConfig) -> Limits {
        Limits {
            config,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any limit is configured at all.
    pub fn any(&self) -> bool {
        let c = &self.config;
        c.rpm.is_some()
            || c.tpm.is_some()
            || c.itpm.is_some()
            || c.otpm.is_some()
            || c.quota_requests.is_some()
    }

    pub fn retry_after_ms(&self) -> bool {
        self.config.retry_after_ms
    }

    fn limit_of(&self, dimension: Dimension) -> Option<u64> {
        let c = &self.config;
        match dimension {
            Dimension::Requests => c.rpm,
            Dimension::Tokens => c.tpm,
            Dimension::InputTokens => c.itpm,
            Dimension::OutputTokens => c.otpm,
        }
        .map(|n| n.0)
    }

    /// What a request costs in `dimension` at admission.
    fn cost(&self, dimension: Dimension, charge: Charge) -> f64 {
        match (dimension, self.config.otpm_mode) {
            // Admitted while the bucket is not in debt; charged as generated.
            (Dimension::OutputTokens, OtpmMode::Generated) => 0.0,
            _ => dimension.admission_cost(charge.input, charge.max_output),
        }
    }

    /// Every bucket back to full: the state at the start of a run.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyState>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides on a request from `key` asking `charge` of `dimensions` (the ones its API
    /// meters), and returns the readings of those dimensions after the decision.
    pub fn admit(
        &self,
        key: &str,
        dimensions: &[Dimension],
        charge: Charge,
    ) -> (Admission, Vec<Reading>) {
        let now = Instant::now();
        let mut keys = self.lock();
        let state = keys.entry(key.to_string()).or_default();
        let metered: Vec<(Dimension, u64)> = dimensions
            .iter()
            .filter_map(|&d| Some((d, self.limit_of(d)?)))
            .collect();
        for &(dimension, limit) in &metered {
            state
                .buckets
                .entry(dimension)
                .or_insert_with(|| TokenBucket::per_minute(limit, now));
        }
        let admission = if self
            .config
            .quota_requests
            .is_some_and(|q| state.requests_made >= q.0)
        {
            Admission::QuotaExhausted
        } else {
            self.charge_all(state, &metered, charge, now)
        };
        if admission == Admission::Admitted {
            state.requests_made += 1;
        }
        let readings = metered
            .iter()
            .map(|&(dimension, limit)| {
                let bucket = state.buckets.get_mut(&dimension).expect("created above");
                Reading {
                    dimension,
                    limit,
                    remaining: bucket.remaining(now),
                    reset: bucket.time_to_full(now),
                }
            })
            .collect();
        (admission, readings)
    }

    /// All or nothing: the largest wait among the buckets that cannot cover their cost.
    fn charge_all(
        &self,
        state: &mut KeyState,
        metered: &[(Dimension, u64)],
        charge: Charge,
        now: Instant,
    ) -> Admission {
        let mut refusal: Option<(Dimension, Duration, u64)> = None;
        for &(dimension, _) in metered {
            let cost = self.cost(dimension, charge);
            let bucket = state.buckets.get_mut(&dimension).expect("created by admit");
            if let Some(wait) = bucket.shortfall(cost.max(f64::MIN_POSITIVE), now)
                && refusal.is_none_or(|(_, longest, _)| wait > longest)
            {
                refusal = Some((dimension, wait, cost as u64));
            }
        }
        if let Some((dimension, wait, requested)) = refusal {
            return Admission::Limited(RateLimited {
                dimension,
                wait,
                requested,
            });
        }
        for &(dimension, _) in metered {
            let cost = self.cost(dimension, charge);
            let bucket = state.buckets.get_mut(&dimension).expect("created by admit");
            bucket.force_take(cost, now);
        }
        Admission::Admitted
    }

    /// Settles output tokens when a response ends: refunds the unused reservation, or
    /// charges what was generated.
    pub fn settle_output(&self, key: &str, reserved: u32, generated: u32) {
        if self.config.otpm.is_none() {
            return;
        }
        let now = Instant::now();
        let mut keys = self.lock();
        let Some(bucket) = keys
            .get_mut(key)
            .and_then(|s| s.buckets.get_mut(&Dimension::OutputTokens))
        else {
            return;
        };
        match self.config.otpm_mode {
            OtpmMode::Reserve => bucket.refund(f64::from(reserved.saturating_sub(generated)), now),
            OtpmMode::Generated => bucket.force_take(f64::from(generated), now),
        }
    }
}

/// The API key a request is metered by: `x-api-key`, else the bearer token, else one
/// shared anonymous key.
pub fn api_key(headers: &axum::http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-api-key")
        .or_else(|| header("authorization").and_then(|a| a.strip_prefix("Bearer ")))
        .unwrap_or("anonymous")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Count;

    fn limits(config: RateLimitConfig) -> Limits {
        Limits::new(config)
    }

    #[test]
    fn tpm_charges_the_larger_of_prompt_and_max_tokens_and_refuses_all_or_nothing() {
        let l = limits(RateLimitConfig {
            rpm: Some(Count(100)),
            tpm: Some(Count(1000)),
            ..Default::default()
        });
        let dims = [Dimension::Requests, Dimension::Tokens];
        let (v, readings) = l.admit(
            "k",
            &dims,
            Charge {
                input: 100,
                max_output: 600,
            },
        );
        assert_eq!(v, Admission::Admitted);
        assert_eq!(readings[1].remaining, 400, "charged max(600, 100)");
        let (v, readings) = l.admit(
            "k",
            &dims,
            Charge {
                input: 500,
                max_output: 10,
            },
        );
        // Needs 500, has 400: 100 tokens at 1000/60 per second = 6 s.
        let Admission::Limited(RateLimited {
            dimension,
            wait,
            requested,
        }) = v
        else {
            panic!("{v:?}")
        };
        assert_eq!((dimension, requested), (Dimension::Tokens, 500));
        assert!((wait.as_secs_f64() - 6.0).abs() < 0.01, "{wait:?}");
        assert_eq!(readings[0].remaining, 99, "a refusal charges nothing");
        // Another key has its own buckets.
        assert_eq!(
            l.admit(
                "other",
                &dims,
                Charge {
                    input: 500,
                    max_output: 10
                }
            )
            .0,
            Admission::Admitted
        );
    }

    #[test]
    fn otpm_reserve_refunds_and_generated_runs_into_debt() {
        let reserve = limits(RateLimitConfig {
            otpm: Some(Count(600)),
            ..Default::default()
        });
        let dims = [Dimension::OutputTokens];
        let (_, r) = reserve.admit(
            "k",
            &dims,
            Charge {
                input: 0,
                max_output: 500,
            },
        );
        assert_eq!(r[0].remaining, 100);
        reserve.settle_output("k", 500, 50);
        let (_, r) = reserve.admit(
            "k",
            &dims,
            Charge {
                input: 0,
                max_output: 500,
            },
        );
        assert_eq!(r[0].remaining, 50, "450 refunded, then 500 reserved again");

        let generated = limits(RateLimitConfig {
            otpm: Some(Count(600)),
            otpm_mode: OtpmMode::Generated,
            ..Default::default()
        });
        assert_eq!(
            generated
                .admit(
                    "k",
                    &dims,
                    Charge {
                        input: 0,
                        max_output: 5000
                    }
                )
                .0,
            Admission::Admitted
        );
        generated.settle_output("k", 5000, 900);
        // 300 tokens of debt at 10 per second: 30 s before the next admission.
        let Admission::Limited(RateLimited { wait, .. }) =
            generated.admit("k", &dims, Charge::default()).0
        else {
            panic!()
        };
        assert!((wait.as_secs_f64() - 30.0).abs() < 0.1, "{wait:?}");
    }

    #[test]
    fn quota_is_per_key_and_final() {
        let l = limits(RateLimitConfig {
            quota_requests: Some(Count(2)),
            ..Default::default()
        });
        let dims = [Dimension::Requests];
        assert_eq!(
            l.admit("k", &dims, Charge::default()).0,
            Admission::Admitted
        );
        assert_eq!(
            l.admit("k", &dims, Charge::default()).0,
            Admission::Admitted
        );
        assert_eq!(
            l.admit("k", &dims, Charge::default()).0,
            Admission::QuotaExhausted
        );
        l.reset();
        assert_eq!(
            l.admit("k", &dims, Charge::default()).0,
            Admission::Admitted
        );
    }
}
