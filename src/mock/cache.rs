//! Prompt caching, as the providers report it: what of a prompt may be cached (its
//! breakpoints), whether a request reads it from cache, and the prefixes held.
//!
//! A prompt's cacheable prefixes end at its breakpoints: every 128 tokens for OpenAI,
//! which caches automatically in 128-token increments, and after each part marked
//! `cache_control` for Anthropic; only prefixes of `min_tokens` or more count. In
//! `hit_rate` mode a request reads its longest cacheable prefix with probability
//! `hit_rate`, drawn from the request's own seed, so every strategy sees the same hits;
//! in `prefix` mode it reads the longest prefix held from an earlier request (within
//! `ttl_s`, at most `max_entries` held), which depends on the order requests arrive in.
//! A cacheable prefix not read is written.
//!
//! Owns the prefixes and the decision; how usage reads is each API's, and what a hit
//! saves in time the pipeline's.

use super::generator::{IMAGE_TOKENS, fnv1a};
use crate::scenario::{CacheConfig, CacheMode};
use crate::wire::content::Content;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// OpenAI caches prompts in increments of this many tokens.
const OPENAI_INCREMENT: u32 = 128;

/// A prompt's token count as the mock counts it (words, and [`IMAGE_TOKENS`] per image
/// part), and its cacheable prefixes, built in one pass over its parts in order.
#[derive(Debug, Clone, Default)]
pub(super) struct PromptTokens {
    tokens: u32,
    /// The running hash of everything so far: a prefix is its hash and length.
    hash: u64,
    /// A breakpoint every this many tokens (OpenAI); `None`: at marked parts only.
    every: Option<u32>,
    /// Ends of the cacheable prefixes: (tokens, hash), shortest first.
    breakpoints: Vec<(u32, u64)>,
}

impl PromptTokens {
    /// OpenAI's: every 128 tokens is a breakpoint.
    pub fn automatic() -> PromptTokens {
        PromptTokens {
            every: Some(OPENAI_INCREMENT),
            ..PromptTokens::default()
        }
    }

    /// Anthropic's: breakpoints only where a part says `cache_control`.
    pub fn explicit() -> PromptTokens {
        PromptTokens::default()
    }

    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// A message's role: part of what a prefix must match, not counted.
    pub fn role(&mut self, role: &str) {
        self.hash = mix(self.hash, fnv1a(role.as_bytes()) ^ 0x5a5a);
    }

    /// Text: one token per word.
    pub fn text(&mut self, text: &str) {
        for word in text.split_whitespace() {
            self.token(fnv1a(word.as_bytes()));
        }
    }

    /// A message's content, part by part; a part marked `cache_control` ends a prefix.
    pub fn content(&mut self, content: &Content<'_>) {
        match content {
            Content::Text(text) => self.text(text),
            Content::Blocks(blocks) => {
                for block in blocks {
                    if let Some(text) = &block.text {
                        self.text(text);
                    } else if block.is_image() {
                        for _ in 0..IMAGE_TOKENS {
                            self.token(0x1a6e);
                        }
                    }
                    if block.cache_control.is_some() {
                        self.breakpoint();
                    }
                }
            }
        }
    }

    fn token(&mut self, word_hash: u64) {
        self.hash = mix(self.hash, word_hash);
        self.tokens = self.tokens.saturating_add(1);
        if self.every.is_some_and(|every| self.tokens % every == 0) {
            self.breakpoint();
        }
    }

    fn breakpoint(&mut self) {
        if self
            .breakpoints
            .last()
            .is_none_or(|&(t, _)| t < self.tokens)
        {
            self.breakpoints.push((self.tokens, self.hash));
        }
    }
}

fn mix(hash: u64, value: u64) -> u64 {
    (hash ^ value)
        .wrapping_mul(0x0000_0100_0000_01b3)
        .rotate_left(17)
}

/// What a request's prompt read from and wrote to the cache, in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CacheUsage {
    pub read: u32,
    pub written: u32,
}

/// The cache of one mock: its configuration and, in `prefix` mode, the prefixes held
/// (by hash) with when each expires.
pub(super) struct PromptCache {
    config: CacheConfig,
    held: Mutex<HashMap<u64, Instant>>,
}

impl PromptCache {
    pub fn new(config: CacheConfig) -> PromptCache {
        PromptCache {
            config,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every prefix: each strategy starts with a cold cache.
    pub fn reset(&self) {
        super::lock(&self.held).clear();
    }

    /// What `prompt` reads from the cache now; `seed` and the prompt's own hash (of
    /// its roles and words, already made while counting it) draw a `hit_rate` hit, so
    /// each distinct request draws its own. Changes nothing: [`PromptCache::store`]
    /// does, once admitted.
    pub fn lookup(&self, prompt: &PromptTokens, seed: u64) -> CacheUsage {
        let min = u32::try_from(self.config.min_tokens.0).unwrap_or(u32::MAX);
        let mut eligible = prompt.breakpoints.iter().filter(|(t, _)| *t >= min);
        let Some(&(longest, _)) = eligible.clone().next_back() else {
            return CacheUsage::default();
        };
        let read = match self.config.mode {
            CacheMode::HitRate => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ prompt.hash ^ CACHE_SALT);
                if rng.random::<f64>() < self.config.hit_rate.0 {
                    longest
                } else {
                    0
                }
            }
            CacheMode::Prefix => {
                let held = super::lock(&self.held);
                let now = Instant::now();
                eligible
                    .rfind(|(_, hash)| held.get(hash).is_some_and(|&expiry| expiry > now))
                    .map_or(0, |&(t, _)| t)
            }
        };
        CacheUsage {
            read,
            written: longest - read,
        }
    }

    /// Holds `prompt`'s cacheable prefixes for `ttl_s` from now (`prefix` mode), making
    /// room by dropping the expired, then those expiring first.
    pub fn store(&self, prompt: &PromptTokens) {
        if self.config.mode != CacheMode::Prefix {
            return;
        }
        let min = u32::try_from(self.config.min_tokens.0).unwrap_or(u32::MAX);
        let now = Instant::now();
        let expiry = now + Duration::from_secs_f64(self.config.ttl_s.0);
        let capacity = self.config.max_entries.get();
        let mut held = super::lock(&self.held);
        for &(_, hash) in prompt.breakpoints.iter().filter(|(t, _)| *t >= min) {
            held.insert(hash, expiry);
        }
        if held.len() > capacity {
            held.retain(|_, &mut e| e > now);
        }
        if held.len() > capacity {
            // Down to nine tenths, so that the scan is paid once per many insertions.
            let mut expiries: Vec<Instant> = held.values().copied().collect();
            let keep = capacity - capacity / 10;
            expiries.sort_unstable();
            let cut = expiries[expiries.len() - keep.max(1)];
            held.retain(|_, &mut e| e >= cut);
        }
    }

    /// The time to first token of a request that read `read` of its `prompt` tokens
    /// from cache: shorter by `ttft_saving` times the cached share.
    pub fn ttft(&self, ttft: Duration, read: u32, prompt: u32) -> Duration {
        if read == 0 || prompt == 0 {
            return ttft;
        }
        let share = f64::from(read.min(prompt)) / f64::from(prompt);
        ttft.mul_f64(1.0 - self.config.ttft_saving.0 * share)
    }
}

/// Keeps the cache's draw apart from the request's other draws (same seed and text).
const CACHE_SALT: u64 = 0x6361_6368_6564_2121;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Count, Seconds, Share, TokenCount};
    use crate::wire::content::{Block, CacheControl};

    fn config(mode: CacheMode) -> CacheConfig {
        CacheConfig {
            mode,
            hit_rate: Share(1.0),
            min_tokens: TokenCount(256),
            ttl_s: Seconds(300.0),
            max_entries: Count(1000),
            ttft_saving: Share(0.8),
        }
    }

    fn openai(words: usize, unique: &str) -> PromptTokens {
        let mut p = PromptTokens::automatic();
        p.role("user");
        p.text(&"shared ".repeat(words));
        p.text(unique);
        p
    }

    #[test]
    fn prefix_mode_reads_the_longest_block_seen_before() {
        let cache = PromptCache::new(config(CacheMode::Prefix));
        let first = openai(300, "item-1 tail");
        assert_eq!(first.tokens(), 302);
        assert_eq!(
            cache.lookup(&first, 0),
            CacheUsage {
                read: 0,
                written: 256
            }
        );
        cache.store(&first);
        // 300 shared words: the 256-token block is shared, the 384 one never reached.
        let second = openai(300, "item-2 tail");
        assert_eq!(
            cache.lookup(&second, 0),
            CacheUsage {
                read: 256,
                written: 0
            }
        );
        let other = openai(0, &"other ".repeat(300));
        assert_eq!(cache.lookup(&other, 0).read, 0);
        cache.reset();
        assert_eq!(cache.lookup(&second, 0).read, 0);
    }

    #[test]
    fn prefix_mode_forgets_a_prefix_after_its_ttl() {
        let cache = PromptCache::new(CacheConfig {
            // Wide enough that no stall between storing and reading outlasts it.
            ttl_s: Seconds(0.5),
            ..config(CacheMode::Prefix)
        });
        let prompt = openai(300, "item-1 tail");
        cache.store(&prompt);
        assert_eq!(cache.lookup(&prompt, 0).read, 256);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            cache.lookup(&prompt, 0),
            CacheUsage {
                read: 0,
                written: 256
            }
        );
    }

    #[test]
    fn prefix_mode_holds_at_most_max_entries_dropping_those_expiring_first() {
        let cache = PromptCache::new(CacheConfig {
            max_entries: Count(10),
            ..config(CacheMode::Prefix)
        });
        // Twenty prompts, each with one cacheable prefix of its own.
        let prompts: Vec<PromptTokens> = (0..20)
            .map(|i| openai(0, &format!("p{i} ").repeat(300)))
            .collect();
        for prompt in &prompts {
            cache.store(prompt);
        }
        let held = super::super::lock(&cache.held).len();
        assert!((9..=10).contains(&held), "{held} held");
        assert_eq!(
            cache.lookup(&prompts[0], 0).read,
            0,
            "the oldest is dropped"
        );
        assert_eq!(
            cache.lookup(&prompts[19], 0).read,
            256,
            "the newest is held"
        );
    }

    #[test]
    fn anthropic_breakpoints_are_the_marked_parts() {
        let marked = Block {
            cache_control: Some(CacheControl::ephemeral()),
            ..Block::text("shared ".repeat(300))
        };
        let mut p = PromptTokens::explicit();
        p.content(&Content::Blocks(vec![marked, Block::text("item-1 tail")]));
        assert_eq!((p.tokens(), p.breakpoints.len()), (302, 1));
        let cache = PromptCache::new(config(CacheMode::HitRate));
        assert_eq!(
            cache.lookup(&p, 1),
            CacheUsage {
                read: 300,
                written: 0
            }
        );
        let mut unmarked = PromptTokens::explicit();
        unmarked.text(&"shared ".repeat(300));
        assert_eq!(cache.lookup(&unmarked, 1), CacheUsage::default());
    }

    #[test]
    fn hit_rate_draws_per_request_and_ttft_shrinks_with_the_cached_share() {
        let cache = PromptCache::new(CacheConfig {
            hit_rate: Share(0.5),
            ..config(CacheMode::HitRate)
        });
        let lookup = |i: i32| cache.lookup(&openai(512, &format!("item-{i}")), 7);
        let hits = (0..1000).filter(|&i| lookup(i).read > 0).count();
        assert!((400..600).contains(&hits), "{hits}");
        assert_eq!(lookup(3), lookup(3));
        let ttft = Duration::from_millis(100);
        assert_eq!(cache.ttft(ttft, 512, 512), Duration::from_millis(20));
        assert_eq!(cache.ttft(ttft, 256, 512), Duration::from_millis(60));
        assert_eq!(cache.ttft(ttft, 0, 512), ttft);
    }
}
