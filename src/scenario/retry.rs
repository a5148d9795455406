//! `[retry]`: which retry policy a failed attempt meets. The policies' behaviour is the
//! retry stage's.

use super::values::{Count, Millis, Seconds};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// Written `policy = "…"` in `[retry]`, read through [`super::tagged`].
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RetryConfig {
    /// Every failure is final.
    #[default]
    None,
    /// Exponential backoff with full jitter: a wait drawn uniformly from
    /// [0, min(cap, base · 2^(attempt − 1))].
    Exponential {
        #[serde(default = "three")]
        max_attempts: Count,
        #[serde(default = "half_second")]
        base_ms: Millis,
        #[serde(default = "eight_seconds")]
        cap_ms: Millis,
        /// Server hints up to this long are obeyed; longer ones fall back to backoff.
        #[serde(default = "one_minute")]
        max_retry_after_s: Seconds,
    },
    /// openai-python ≥ 2.52: 3 attempts; backoff min(0.5 · 2^k, 8) s · (1 − 0.25 U);
    /// honours hints of at most 120 s and gives up on longer ones.
    OpenaiPython {
        #[serde(default = "three")]
        max_attempts: Count,
        #[serde(default = "two_minutes")]
        max_retry_after_s: Seconds,
    },
    /// anthropic-python ≥ 1.6: as openai-python. The SDK honours any positive hint; here
    /// a hint beyond `max_retry_after_s` ends the request instead, so one 429 cannot hang
    /// a run for days.
    AnthropicPython {
        #[serde(default = "three")]
        max_attempts: Count,
        #[serde(default = "one_minute")]
        max_retry_after_s: Seconds,
    },
}

fn three() -> Count {
    Count(3)
}
fn half_second() -> Millis {
    Millis(500.0)
}
fn eight_seconds() -> Millis {
    Millis(8000.0)
}
fn one_minute() -> Seconds {
    Seconds(60.0)
}
fn two_minutes() -> Seconds {
    Seconds(120.0)
}
