//! What the mock answers to one request: its latencies, length and text.
//!
//! Every draw comes from an RNG seeded by the mock's seed and the request's prompt, not
//! by arrival order. So the same work item gets the same time to first token, the same
//! token gaps and the same text under every strategy, however the requests interleave:
//! strategies are compared on identical service times.
//!
//! Owns the draws; must not touch the clock, the wire format or any shared state.

use crate::scenario::{MillisDistribution, MockConfig};
use crate::wire::openai::FinishReason;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Words of generated text, each one token; a chunk carries one word and its leading
/// space, as tokenizers split text.
const WORDS: &[&str] = &[
    " the",
    " model",
    " answers",
    " with",
    " a",
    " steady",
    " stream",
    " of",
    " tokens",
    " and",
    " every",
    " one",
    " arrives",
    " on",
    " time",
    " for",
    " benchmark",
    " runs",
    " latency",
    " matters",
];

/// Length of a completion when neither the scenario nor the request bounds it.
pub const UNCAPPED_LENGTH: u32 = 128;

pub struct CompletionPlan {
    /// Uniform in [0, 1): picks this request's fault, if any (see `faults`).
    pub fault_roll: f64,
    pub ttft: Duration,
    pub output_tokens: u32,
    pub finish_reason: FinishReason,
    rng: ChaCha8Rng,
    itl: MillisDistribution,
}

impl CompletionPlan {
    /// Draws the plan for a prompt. The completion runs to `output_tokens` if the
    /// scenario sets it, else to the request's cap, else to [`UNCAPPED_LENGTH`] tokens;
    /// it stops with `length` when the cap cuts it, else with `stop`.
    pub fn draw(config: &MockConfig, seed: u64, prompt: &str, cap: Option<u32>) -> CompletionPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(prompt.as_bytes()));
        let ttft = config.ttft_ms.sample(&mut rng);
        let wanted = match config.output_tokens {
            Some(dist) => dist.sample(&mut rng),
            None => cap.unwrap_or(UNCAPPED_LENGTH),
        };
        let (output_tokens, finish_reason) = match cap {
            Some(cap) if wanted >= cap => (cap, FinishReason::Length),
            _ => (wanted, FinishReason::Stop),
        };
        CompletionPlan {
            fault_roll: rng.random(),
            ttft,
            output_tokens,
            finish_reason,
            rng,
            itl: config.itl_ms,
        }
    }

    /// The gap before the next token (after the first).
    pub fn next_gap(&mut self) -> Duration {
        self.itl.sample(&mut self.rng)
    }

    /// The text of the next token.
    pub fn next_word(&mut self) -> &'static str {
        WORDS[self.rng.random_range(0..WORDS.len())]
    }
}

/// The whole text of a completion whose clock starts at `start`, and when its last
/// token is due (for responses sent in one piece).
pub fn whole_text(
    plan: &mut CompletionPlan,
    pacing: &super::capacity::Pacing,
    start: tokio::time::Instant,
) -> (String, tokio::time::Instant) {
    let mut text = String::new();
    let mut done_at = start + plan.ttft;
    for k in 0..plan.output_tokens {
        if k > 0 {
            done_at += pacing.gap(plan.next_gap());
        }
        text.push_str(plan.next_word());
    }
    (text, done_at)
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across Rust versions), so the
/// same seed gives the same draws on every build.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What an image part of a prompt counts, in tokens: OpenAI's charge for an image at
/// `"detail": "low"`, its smallest. The mock does not look at the image.
pub const IMAGE_TOKENS: u32 = 85;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prompt_same_plan_other_prompt_other_plan() {
        let config = MockConfig {
            ttft_ms: crate::scenario::MillisDistribution(crate::scenario::Distribution::Uniform {
                min: 10.0,
                max: 1000.0,
            }),
            ..MockConfig::default()
        };
        let a = CompletionPlan::draw(&config, 1, "item-1 alpha", Some(10));
        let b = CompletionPlan::draw(&config, 1, "item-1 alpha", Some(10));
        let c = CompletionPlan::draw(&config, 1, "item-2 alpha", Some(10));
        assert_eq!(a.ttft, b.ttft);
        assert_ne!(a.ttft, c.ttft);
    }

    #[test]
    fn length_is_capped_by_max_tokens() {
        let mut config = MockConfig::default();
        let plan = CompletionPlan::draw(&config, 0, "p", Some(7));
        assert_eq!(
            (plan.output_tokens, plan.finish_reason),
            (7, FinishReason::Length)
        );
        config.output_tokens = Some(crate::scenario::TokenDistribution(
            crate::scenario::Distribution::Constant { value: 3.0 },
        ));
        let plan = CompletionPlan::draw(&config, 0, "p", Some(7));
        assert_eq!(
            (plan.output_tokens, plan.finish_reason),
            (3, FinishReason::Stop)
        );
        let plan = CompletionPlan::draw(&MockConfig::default(), 0, "p", None);
        assert_eq!(
            (plan.output_tokens, plan.finish_reason),
            (UNCAPPED_LENGTH, FinishReason::Stop)
        );
    }
}
