//! Retrying failed attempts: which failures are retried, and how long to wait first.
//!
//! The rules follow the official SDKs (see the presets): retry connection errors,
//! timeouts, 408, 409, 429 and every status ≥ 500, unless the server says otherwise with
//! `x-should-retry`; prefer the server's `retry-after-ms` / `retry-after` hint to the
//! client's own backoff. Errors raised mid-stream are never retried.
//!
//! The policies come from the scenario's `[retry]`; the decisions read only the
//! client's `Exchange`. Sleeping and re-sending are the dispatcher's.

use crate::client::ErrorClass;
use crate::client::Exchange;
use crate::scenario::RetryConfig;
use rand::Rng;
use std::time::Duration;

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Stop,
    RetryAfter(Duration),
    /// Not retried although retryable: the server's hint is longer than the policy waits.
    GiveUp(String),
}

/// What a hint longer than the policy accepts leads to.
enum LongHint {
    Backoff,
    GiveUp,
}

impl RetryConfig {
    /// Decides after attempt number `attempt` (from 1) ended with `exchange`.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        exchange: &Exchange,
        attempt: u32,
        rng: &mut R,
    ) -> Decision {
        let Some(max_attempts) = self.max_attempts() else {
            return Decision::Stop;
        };
        if attempt >= max_attempts || !is_retryable(exchange) {
            return Decision::Stop;
        }
        let long_hint = match self {
            RetryConfig::OpenaiPython { .. } | RetryConfig::AnthropicPython { .. } => {
                LongHint::GiveUp
            }
            RetryConfig::None | RetryConfig::Exponential { .. } => LongHint::Backoff,
        };
        let max_hint = self.max_retry_after();
        match exchange.retry_after.filter(|h| !h.is_zero()) {
            Some(hint) if hint <= max_hint => Decision::RetryAfter(hint),
            Some(hint) if matches!(long_hint, LongHint::GiveUp) => Decision::GiveUp(format!(
                "the server asked to wait {:.0} s, more than max_retry_after_s ({:.0} s)",
                hint.as_secs_f64(),
                max_hint.as_secs_f64()
            )),
            _ => Decision::RetryAfter(self.backoff(attempt, rng)),
        }
    }

    /// The longest server hint the policy obeys: its `max_retry_after_s`, or one minute
    /// without a policy (a strategy that pauses on hints still needs a bound).
    pub fn max_retry_after(&self) -> Duration {
        let seconds = match self {
            RetryConfig::None => 60.0,
            RetryConfig::Exponential {
                max_retry_after_s, ..
            }
            | RetryConfig::OpenaiPython {
                max_retry_after_s, ..
            }
            | RetryConfig::AnthropicPython {
                max_retry_after_s, ..
            } => max_retry_after_s.0,
        };
        Duration::from_secs_f64(seconds)
    }

    fn max_attempts(&self) -> Option<u32> {
        match self {
            RetryConfig::None => None,
            RetryConfig::Exponential { max_attempts, .. }
            | RetryConfig::OpenaiPython { max_attempts, .. }
            | RetryConfig::AnthropicPython { max_attempts, .. } => {
                Some(u32::try_from(max_attempts.0).unwrap_or(u32::MAX))
            }
        }
    }

    /// The client's own wait before attempt `attempt + 1`.
    fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let doubling = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let seconds = match self {
            RetryConfig::Exponential {
                base_ms, cap_ms, ..
            } => {
                let ceiling = (base_ms.0 * doubling).min(cap_ms.0) / 1000.0;
                rng.random_range(0.0..=ceiling)
            }
            _ => (0.5 * doubling).min(8.0) * (1.0 - 0.25 * rng.random::<f64>()),
        };
        Duration::from_secs_f64(seconds)
    }
}

fn is_retryable(exchange: &Exchange) -> bool {
    let Some((class, _)) = &exchange.error else {
        return false;
    };
    if let Some(should) = exchange.should_retry {
        return should;
    }
    match (class, exchange.status) {
        (ErrorClass::Connect | ErrorClass::Timeout, _) if !exchange.mid_response() => true,
        (_, Some(status)) if !exchange.mid_response() => matches!(status, 408 | 409 | 429 | 500..),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Count, Millis, Seconds};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::time::Instant;

    fn failed(status: Option<u16>, class: ErrorClass) -> Exchange {
        Exchange {
            status,
            error: Some((class, "x".into())),
            ..Exchange::new(Instant::now())
        }
    }

    fn openai() -> RetryConfig {
        RetryConfig::OpenaiPython {
            max_attempts: Count(3),
            max_retry_after_s: Seconds(120.0),
        }
    }

    fn anthropic(max_retry_after_s: f64) -> RetryConfig {
        RetryConfig::AnthropicPython {
            max_attempts: Count(3),
            max_retry_after_s: Seconds(max_retry_after_s),
        }
    }

    #[test]
    fn retries_what_the_sdks_retry() {
        let rng = &mut ChaCha8Rng::seed_from_u64(1);
        let mut retried = |e: &Exchange| openai().decide(e, 1, rng) != Decision::Stop;
        for status in [408, 409, 429, 500, 503, 529] {
            let class = ErrorClass::from_status(status);
            assert!(retried(&failed(Some(status), class)), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(
                !retried(&failed(Some(status), ErrorClass::ClientError)),
                "{status}"
            );
        }
        assert!(retried(&failed(None, ErrorClass::Connect)));
        assert!(retried(&failed(None, ErrorClass::Timeout)));
        let mut mid_stream = failed(Some(200), ErrorClass::Protocol);
        mid_stream.content_chunks = 3;
        assert!(!retried(&mid_stream));
        let mut told_not_to = failed(Some(429), ErrorClass::RateLimited);
        told_not_to.should_retry = Some(false);
        assert!(!retried(&told_not_to));
        let mut told_to = failed(Some(400), ErrorClass::ClientError);
        told_to.should_retry = Some(true);
        assert!(retried(&told_to));
    }

    #[test]
    fn max_attempts_and_none() {
        let rng = &mut ChaCha8Rng::seed_from_u64(1);
        let e = failed(Some(500), ErrorClass::ServerError);
        assert_ne!(openai().decide(&e, 2, rng), Decision::Stop);
        assert_eq!(openai().decide(&e, 3, rng), Decision::Stop);
        assert_eq!(RetryConfig::None.decide(&e, 1, rng), Decision::Stop);
    }

    #[test]
    fn hints_are_obeyed_within_the_policy_limit() {
        let rng = &mut ChaCha8Rng::seed_from_u64(1);
        let mut e = failed(Some(429), ErrorClass::RateLimited);
        e.retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            openai().decide(&e, 1, rng),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        e.retry_after = Some(Duration::from_secs(121));
        let Decision::GiveUp(why) = openai().decide(&e, 1, rng) else {
            panic!("openai gives up above 120 s")
        };
        assert!(
            why.contains("121 s") && why.contains("max_retry_after_s (120 s)"),
            "{why}"
        );
        assert!(matches!(
            anthropic(60.0).decide(&e, 1, rng),
            Decision::GiveUp(_)
        ));
        assert_eq!(
            anthropic(600.0).decide(&e, 1, rng),
            Decision::RetryAfter(Duration::from_secs(121))
        );
        let exponential = RetryConfig::Exponential {
            max_attempts: Count(3),
            base_ms: Millis(100.0),
            cap_ms: Millis(1000.0),
            max_retry_after_s: Seconds(60.0),
        };
        let Decision::RetryAfter(wait) = exponential.decide(&e, 1, rng) else {
            panic!()
        };
        assert!(
            wait <= Duration::from_millis(100),
            "a long hint falls back to backoff: {wait:?}"
        );
    }

    #[test]
    fn no_policy_waits_longer_than_its_cap() {
        let rng = &mut ChaCha8Rng::seed_from_u64(3);
        let mut e = failed(Some(429), ErrorClass::RateLimited);
        e.retry_after = Some(Duration::MAX);
        let exponential = RetryConfig::Exponential {
            max_attempts: Count(3),
            base_ms: Millis(500.0),
            cap_ms: Millis(8000.0),
            max_retry_after_s: Seconds(60.0),
        };
        for policy in [openai(), anthropic(60.0), exponential, RetryConfig::None] {
            match policy.decide(&e, 1, rng) {
                Decision::RetryAfter(wait) => assert!(wait <= Duration::from_secs(8), "{policy:?}"),
                Decision::Stop | Decision::GiveUp(_) => {}
            }
        }
    }

    #[test]
    fn backoff_follows_the_formulas() {
        let rng = &mut ChaCha8Rng::seed_from_u64(2);
        let e = failed(Some(500), ErrorClass::ServerError);
        let sdk = RetryConfig::AnthropicPython {
            max_attempts: Count(10),
            max_retry_after_s: Seconds(60.0),
        };
        for (attempt, full) in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 8.0)] {
            for _ in 0..100 {
                let Decision::RetryAfter(wait) = sdk.decide(&e, attempt, rng) else {
                    panic!()
                };
                let s = wait.as_secs_f64();
                assert!(
                    s > full * 0.75 - 1e-9 && s <= full + 1e-9,
                    "attempt {attempt}: {s}"
                );
            }
        }
        let jitter = RetryConfig::Exponential {
            max_attempts: Count(10),
            base_ms: Millis(100.0),
            cap_ms: Millis(1000.0),
            max_retry_after_s: Seconds(60.0),
        };
        let waits: Vec<f64> = (0..1000)
            .map(|_| match jitter.decide(&e, 3, rng) {
                Decision::RetryAfter(w) => w.as_secs_f64(),
                other => panic!("{other:?}"),
            })
            .collect();
        // Full jitter on attempt 3: uniform on [0, 0.4 s].
        assert!(waits.iter().all(|w| (0.0..=0.4).contains(w)));
        let mean = waits.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.2).abs() < 0.02, "{mean}");
    }
}
