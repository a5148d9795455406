//! What the mock answers to one request: its latencies, and each choice's length and
//! text.
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
use rand_pcg::Pcg32;
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

/// One choice of a completion: its length, why it ended, and where its words come from.
pub struct ChoicePlan {
    pub output_tokens: u32,
    pub finish_reason: FinishReason,
    /// Its own word stream, seeded from the request's draws: a PCG of 16 bytes rather
    /// than another ChaCha (300), since a token's word is drawn from a plan that at
    /// 10,000 streams is cold by then, and the ChaCha's buffer was one cache miss more
    /// per token (5 % of the mock's CPU at 500,000 tokens a second).
    words: Pcg32,
}

pub struct CompletionPlan {
    /// Uniform in [0, 1): picks this request's fault, if any (see `faults`).
    pub fault_roll: f64,
    pub ttft: Duration,
    /// The choices asked for (OpenAI's `n`; one on every other API), by index. They
    /// decode together, one token each per step, sharing the time to first token and
    /// the gaps, as a server batching a request's sequences does. The one choice of
    /// almost every request is kept inline: at 10,000 streams a plan is cold by its
    /// next token, and a separate allocation was one cache miss more per token.
    pub choices: smallvec::SmallVec<[ChoicePlan; 1]>,
    rng: ChaCha8Rng,
    itl: MillisDistribution,
}

impl CompletionPlan {
    /// Draws the plan of `choices` completions of a prompt. Each runs to
    /// `output_tokens` if the scenario sets it (drawn per choice, as a provider samples
    /// each choice on its own), else to the request's cap, else to [`UNCAPPED_LENGTH`]
    /// tokens; it stops with `length` when the cap cuts it, else with `stop`. Choice
    /// `k` > 0 draws its length and words from stream `k` of the request's seed, so its
    /// text differs from the others' and is the same under every strategy.
    pub fn draw(
        config: &MockConfig,
        seed: u64,
        prompt: &str,
        cap: Option<u32>,
        choices: u32,
    ) -> CompletionPlan {
        let request_seed = seed ^ fnv1a(prompt.as_bytes());
        let mut rng = ChaCha8Rng::seed_from_u64(request_seed);
        let ttft = config.ttft_ms.sample(&mut rng);
        let first = ChoicePlan::length(config, cap, &mut rng);
        let fault_roll = rng.random();
        // Seeded after the fault roll, so that a request's time to first token, length
        // and fault are what they were before the words had a stream of their own.
        let first = ChoicePlan::new(first, &mut rng);
        let others = (1..choices.max(1)).map(|k| {
            let mut draws = ChaCha8Rng::seed_from_u64(request_seed);
            draws.set_stream(u64::from(k));
            ChoicePlan::new(ChoicePlan::length(config, cap, &mut draws), &mut draws)
        });
        CompletionPlan {
            fault_roll,
            ttft,
            choices: std::iter::once(first).chain(others).collect(),
            rng,
            itl: config.itl_ms,
        }
    }

    /// Tokens of every choice together: what usage reports and what is sent.
    pub fn output_tokens(&self) -> u32 {
        self.choices.iter().map(|c| c.output_tokens).sum()
    }

    /// Decoding steps: the longest choice's tokens.
    pub fn steps(&self) -> u32 {
        self.choices
            .iter()
            .map(|c| c.output_tokens)
            .max()
            .unwrap_or(0)
    }

    /// How the first choice (the only one, on APIs without `n`) ended.
    pub fn finish_reason(&self) -> FinishReason {
        self.choices[0].finish_reason
    }

    /// The gap before the next step (after the first).
    pub fn next_gap(&mut self) -> Duration {
        self.itl.sample(&mut self.rng)
    }

    /// The text of choice `choice`'s next token.
    pub fn next_word(&mut self, choice: usize) -> &'static str {
        WORDS[self.choices[choice].words.random_range(0..WORDS.len())]
    }
}

impl ChoicePlan {
    /// A choice's length from the mock's length model, and why it ends.
    fn length(config: &MockConfig, cap: Option<u32>, rng: &mut ChaCha8Rng) -> (u32, FinishReason) {
        let wanted = match config.output_tokens {
            Some(dist) => dist.sample(rng),
            None => cap.unwrap_or(UNCAPPED_LENGTH),
        };
        match cap {
            Some(cap) if wanted >= cap => (cap, FinishReason::Length),
            _ => (wanted, FinishReason::Stop),
        }
    }

    /// A choice of that length, its word stream seeded by the next draw of `rng`.
    fn new(
        (output_tokens, finish_reason): (u32, FinishReason),
        rng: &mut ChaCha8Rng,
    ) -> ChoicePlan {
        ChoicePlan {
            output_tokens,
            finish_reason,
            words: Pcg32::seed_from_u64(rng.random()),
        }
    }
}

/// The whole text of each choice of a completion whose clock starts at `start`, and
/// when the last token is due (for responses sent in one piece).
pub fn whole_texts(
    plan: &mut CompletionPlan,
    pacing: &super::capacity::Pacing,
    start: tokio::time::Instant,
) -> (Vec<String>, tokio::time::Instant) {
    let mut texts = vec![String::new(); plan.choices.len()];
    let mut done_at = start + plan.ttft;
    for step in 0..plan.steps() {
        if step > 0 {
            done_at += pacing.gap(plan.next_gap());
        }
        for (choice, text) in texts.iter_mut().enumerate() {
            if plan.choices[choice].output_tokens > step {
                text.push_str(plan.next_word(choice));
            }
        }
    }
    (texts, done_at)
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
        let a = CompletionPlan::draw(&config, 1, "item-1 alpha", Some(10), 1);
        let b = CompletionPlan::draw(&config, 1, "item-1 alpha", Some(10), 1);
        let c = CompletionPlan::draw(&config, 1, "item-2 alpha", Some(10), 1);
        assert_eq!(a.ttft, b.ttft);
        assert_ne!(a.ttft, c.ttft);
    }

    #[test]
    fn length_is_capped_by_max_tokens() {
        let mut config = MockConfig::default();
        let plan = CompletionPlan::draw(&config, 0, "p", Some(7), 1);
        assert_eq!(
            (plan.output_tokens(), plan.finish_reason()),
            (7, FinishReason::Length)
        );
        config.output_tokens = Some(crate::scenario::TokenDistribution(
            crate::scenario::Distribution::Constant { value: 3.0 },
        ));
        let plan = CompletionPlan::draw(&config, 0, "p", Some(7), 1);
        assert_eq!(
            (plan.output_tokens(), plan.finish_reason()),
            (3, FinishReason::Stop)
        );
        let plan = CompletionPlan::draw(&MockConfig::default(), 0, "p", None, 1);
        assert_eq!(
            (plan.output_tokens(), plan.finish_reason()),
            (UNCAPPED_LENGTH, FinishReason::Stop)
        );
    }

    #[test]
    fn each_choice_draws_its_own_length_and_words_and_the_first_draws_as_alone() {
        let config = MockConfig {
            output_tokens: Some(crate::scenario::TokenDistribution(
                crate::scenario::Distribution::Uniform {
                    min: 5.0,
                    max: 500.0,
                },
            )),
            ..MockConfig::default()
        };
        let texts = |choices| {
            let mut plan = CompletionPlan::draw(&config, 7, "item-3 alpha", Some(1000), choices);
            let start = tokio::time::Instant::now();
            let pacing = super::super::capacity::Pacing::unlimited();
            whole_texts(&mut plan, &pacing, start).0
        };
        let three = texts(3);
        assert_eq!(three[0], texts(1)[0], "choice 0 is the request's own draw");
        assert!(three[0] != three[1] && three[1] != three[2] && three[0] != three[2]);
        let lengths: Vec<usize> = three.iter().map(|t| t.split_whitespace().count()).collect();
        assert!(
            lengths[0] != lengths[1] || lengths[1] != lengths[2],
            "{lengths:?}"
        );
        assert_eq!(three, texts(3), "the same request, the same choices");
    }
}
