//! `[mock]`: how the embedded (or standalone) mock server behaves: latencies, rate
//! limits, a stall, injected faults and a capacity model. The types only; the mock owns
//! what they do.

use super::distribution::{Distribution, MillisDistribution, TokenDistribution};
use super::target::default_mock_model;
use super::values::{
    ByteCount, Concurrency, Count, NonNegative, Offset, QueueLength, Seconds, Share, ThreadCount,
    TokenCount,
};
use serde::{Deserialize, Serialize};

/// The `[mock]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// Time from admission to the first content token.
    #[serde(default = "default_ttft")]
    pub ttft_ms: MillisDistribution,
    /// Gap between consecutive content tokens, drawn per gap.
    #[serde(default = "default_itl")]
    pub itl_ms: MillisDistribution,
    /// Completion length; absent means every completion runs to `max_tokens`.
    pub output_tokens: Option<TokenDistribution>,
    /// Seed of the latency and text draws; defaults to `workload.seed`.
    pub seed: Option<u64>,
    /// Worker threads of the mock's own runtime.
    #[serde(default = "one")]
    pub threads: ThreadCount,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// A window in which the server answers nothing, as a provider hiccups.
    pub stall: Option<StallConfig>,
    /// Injected faults and their probabilities.
    #[serde(default)]
    pub faults: FaultConfig,
    /// An inference server's capacity: decode slots, queue, prefill, load factor.
    pub capacity: Option<CapacityConfig>,
    /// Model ids listed by `GET /v1/models` (requests may name any model).
    #[serde(default = "default_models")]
    pub models: Vec<String>,
    /// Largest request body accepted; larger ones get the provider's 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: ByteCount,
    /// Seconds a connection may take to send a request's head (and may sit idle between
    /// requests; over HTTP/2, with no stream open) before it is closed.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_s: Seconds,
    /// Seconds a request's whole body may take to arrive once its head has; a slower one
    /// gets 408.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_s: Seconds,
    /// Connections open at once; one more is closed as soon as it is accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: Concurrency,
    /// Prompt caching as the providers report it; absent, nothing is cached.
    pub cache: Option<CacheConfig>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            ttft_ms: default_ttft(),
            itl_ms: default_itl(),
            output_tokens: None,
            seed: None,
            threads: one(),
            rate_limit: RateLimitConfig::default(),
            stall: None,
            faults: FaultConfig::default(),
            capacity: None,
            models: default_models(),
            max_body_bytes: default_max_body(),
            header_timeout_s: default_header_timeout(),
            body_timeout_s: default_body_timeout(),
            max_connections: default_max_connections(),
            cache: None,
        }
    }
}

fn default_ttft() -> MillisDistribution {
    MillisDistribution(Distribution::Constant { value: 200.0 })
}

fn default_itl() -> MillisDistribution {
    MillisDistribution(Distribution::Constant { value: 20.0 })
}

fn one() -> ThreadCount {
    ThreadCount(1)
}

fn default_models() -> Vec<String> {
    vec![default_mock_model()]
}

/// 32 MiB, Anthropic's limit for Messages requests.
fn default_max_body() -> ByteCount {
    ByteCount(32 * 1024 * 1024)
}

/// 30 s: hyper's own default, and half of nginx's `client_header_timeout`. It also
/// closes keep-alive connections idle that long (hyper times the wait for every head),
/// which clients' pools expect of servers (Node closes them after 5 s, nginx after 75 s).
fn default_header_timeout() -> Seconds {
    Seconds(30.0)
}

/// 60 s, nginx's `client_body_timeout`: a whole 32 MiB body at half a megabyte a second.
fn default_body_timeout() -> Seconds {
    Seconds(60.0)
}

/// Room for 10,000 concurrent streams and then some. Each connection holds a file
/// descriptor (llmbench raises its soft open-file limit to the hard one at start): under
/// a hard limit below the cap, connections past it wait in the kernel's queue while
/// `accept` fails for want of a descriptor, instead of being refused.
fn default_max_connections() -> Concurrency {
    Concurrency(16_384)
}

/// `[mock.stall]`: requests arriving in `[at_s, at_s + duration_s)` after the strategy's
/// start get no response until the window ends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallConfig {
    pub at_s: Offset,
    pub duration_s: Seconds,
}

/// `[mock.rate_limit]`: provider-style limits, enforced as continuously refilled token
/// buckets whose capacity is the per-minute limit (a full bucket admits a whole minute's
/// quota at once).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute; absent means unlimited.
    pub rpm: Option<Count>,
    /// OpenAI tokens per minute, charged max(max_tokens, prompt tokens) at admission.
    pub tpm: Option<Count>,
    /// Anthropic input tokens per minute, charged the prompt at admission.
    pub itpm: Option<Count>,
    /// Anthropic output tokens per minute.
    pub otpm: Option<Count>,
    /// How output tokens are charged: reserved from max_tokens at admission and the
    /// unused part refunded at the end (`reserve`), or counted as generated.
    #[serde(default)]
    pub otpm_mode: OtpmMode,
    /// Also send `retry-after-ms` (milliseconds) with every 429.
    #[serde(default)]
    pub retry_after_ms: bool,
    /// Requests each API key may make in all; past it, 429 `insufficient_quota` with
    /// `x-should-retry: false`.
    pub quota_requests: Option<Count>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpmMode {
    #[default]
    Reserve,
    Generated,
}

/// `[mock.faults]`: the probability of each fault per request (0 to 1), and how long a
/// stall lasts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    #[serde(default)]
    pub error_429: Share,
    #[serde(default)]
    pub error_500: Share,
    #[serde(default)]
    pub error_503: Share,
    #[serde(default)]
    pub error_529: Share,
    #[serde(default)]
    pub disconnect: Share,
    #[serde(default)]
    pub stall: Share,
    #[serde(default)]
    pub error_event: Share,
    #[serde(default)]
    pub malformed: Share,
    /// How long a stall lasts, in seconds (default 600: past any sensible timeout).
    pub stall_s: Option<Seconds>,
}

/// `[mock.capacity]`: an inference server's decode slots, queue, prefill and load factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Sequences decoding at once.
    pub max_concurrent: Concurrency,
    /// Requests that may wait for a slot; one more is refused.
    #[serde(default = "default_queue")]
    pub queue: QueueLength,
    /// The status a refused request gets: 429 or 503.
    #[serde(default = "default_queue_full_status")]
    pub queue_full_status: QueueFullStatus,
    /// Fixed time before prefill, in milliseconds.
    #[serde(default)]
    pub overhead_ms: NonNegative,
    /// Prefill time per prompt token, in microseconds.
    #[serde(default)]
    pub prefill_us_per_token: NonNegative,
    /// Each gap is multiplied by 1 + load_factor × (sequences decoding − 1).
    #[serde(default)]
    pub load_factor: NonNegative,
}

fn default_queue() -> QueueLength {
    QueueLength(1024)
}

fn default_queue_full_status() -> QueueFullStatus {
    QueueFullStatus(503)
}

/// 429 or 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct QueueFullStatus(pub u16);

impl<'de> Deserialize<'de> for QueueFullStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u16::deserialize(d)? {
            s @ (429 | 503) => Ok(QueueFullStatus(s)),
            s => Err(serde::de::Error::custom(format!(
                "must be 429 or 503, got {s}"
            ))),
        }
    }
}

/// `[mock.cache]`: prompt caching. Which requests hit is decided by `mode`; what a hit
/// reads is the prompt's cacheable prefix (OpenAI: whole 128-token blocks; Anthropic: up
/// to the last `cache_control` block), from `min_tokens` on. Read through
/// `CacheKeys`, which refuses the keys of the other mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CacheKeys", into = "CacheKeys")]
pub struct CacheConfig {
    pub mode: CacheMode,
    /// `hit_rate` mode: the share of requests whose cacheable prefix is read from cache.
    pub hit_rate: Share,
    /// The shortest prefix cached, in tokens (both providers document 1,024).
    pub min_tokens: TokenCount,
    /// `prefix` mode: how long a prefix stays cached after its last use.
    pub ttl_s: Seconds,
    /// `prefix` mode: how many prefixes the cache holds; the least recently used go first.
    pub max_entries: Count,
    /// The share of the time to first token saved when the whole prompt is cached; a
    /// partly cached prompt saves that share times its cached part.
    pub ttft_saving: Share,
}

/// `[mock.cache]` as written: a key absent is `None`, so that one only the other mode
/// reads can be told from its default and refused.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheKeys {
    mode: Option<CacheMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hit_rate: Option<Share>,
    #[serde(default = "default_min_cached")]
    min_tokens: TokenCount,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_s: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_entries: Option<Count>,
    #[serde(default = "default_ttft_saving")]
    ttft_saving: Share,
}

impl TryFrom<CacheKeys> for CacheConfig {
    type Error = String;

    fn try_from(keys: CacheKeys) -> Result<CacheConfig, String> {
        let mode = keys.mode.unwrap_or_default();
        let other_mode = |key: &str, value: String, wanted: &str, why: &str| {
            Err(format!(
                "`{key} = {value}` applies to `mode = \"{wanted}\"` only, and this cache's mode is \"{}\"{}: {why}; remove `{key}`, or set `mode = \"{wanted}\"`",
                mode.as_str(),
                if keys.mode.is_none() {
                    " (the default)"
                } else {
                    ""
                },
            ))
        };
        let held = "a `hit_rate` cache holds no prefixes, it draws each request's hit";
        match mode {
            CacheMode::HitRate => {
                if let Some(ttl) = keys.ttl_s {
                    return other_mode("ttl_s", super::values::shown(ttl.0), "prefix", held);
                }
                if let Some(entries) = keys.max_entries {
                    return other_mode("max_entries", entries.0.to_string(), "prefix", held);
                }
            }
            CacheMode::Prefix => {
                if let Some(rate) = keys.hit_rate {
                    let why = "a `prefix` cache hits when a held prefix matches, not by chance";
                    return other_mode("hit_rate", super::values::shown(rate.0), "hit_rate", why);
                }
            }
        }
        Ok(CacheConfig {
            mode,
            hit_rate: keys.hit_rate.unwrap_or_else(default_hit_rate),
            min_tokens: keys.min_tokens,
            ttl_s: keys.ttl_s.unwrap_or_else(default_cache_ttl),
            max_entries: keys.max_entries.unwrap_or_else(default_cache_entries),
            ttft_saving: keys.ttft_saving,
        })
    }
}

impl From<CacheConfig> for CacheKeys {
    /// Only the mode's own keys, so that what is written reads back.
    fn from(config: CacheConfig) -> CacheKeys {
        let prefix = config.mode == CacheMode::Prefix;
        CacheKeys {
            mode: Some(config.mode),
            hit_rate: (!prefix).then_some(config.hit_rate),
            min_tokens: config.min_tokens,
            ttl_s: prefix.then_some(config.ttl_s),
            max_entries: prefix.then_some(config.max_entries),
            ttft_saving: config.ttft_saving,
        }
    }
}

/// Which requests hit the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Each request hits with probability `hit_rate`, drawn from its own seed: the same
    /// request hits under every strategy, so service times stay identical.
    #[default]
    HitRate,
    /// Real prefix matching against the prefixes seen in the last `ttl_s`: realistic,
    /// and dependent on the order requests arrive in.
    Prefix,
}

impl CacheMode {
    /// As the scenario writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::HitRate => "hit_rate",
            CacheMode::Prefix => "prefix",
        }
    }
}

fn default_hit_rate() -> Share {
    Share(0.5)
}

fn default_min_cached() -> TokenCount {
    TokenCount(1024)
}

/// Five minutes: Anthropic's default cache lifetime, and OpenAI's typical one.
fn default_cache_ttl() -> Seconds {
    Seconds(300.0)
}

fn default_cache_entries() -> Count {
    Count(100_000)
}

fn default_ttft_saving() -> Share {
    Share(0.8)
}
