//! The scenario file: what to send, where, and which dispatch strategies to compare.
//!
//! Every check that can be made while parsing is made there, so that each error carries
//! the file, line, column and key path of the offending value (`strategy[1].limit`;
//! array indices count from 0) and says what is expected.

mod distribution;
mod error;
mod headers;
pub(crate) mod tagged;

pub use distribution::{Distribution, MillisDistribution, TokenDistribution};
pub use error::ScenarioError;
pub use headers::{HeaderSource, RequestHeaders};

use crate::client::HttpLibrary;
use crate::retry::RetryConfig;
use crate::runtime::RuntimeKind;
use crate::slo::SloConfig;
use crate::strategy::StrategyKind;
use crate::workload::{ArrivalConfig, TraceRow, WorkItem, trace};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Name,
    #[serde(default)]
    pub description: String,
    #[serde(deserialize_with = "tagged::kind")]
    pub target: Target,
    #[serde(default)]
    pub mock: MockConfig,
    #[serde(rename = "workload")]
    workload_entry: toml::Spanned<WorkloadConfig>,
    #[serde(default)]
    pub client: ClientConfig,
    #[serde(default, deserialize_with = "tagged::policy")]
    pub retry: RetryConfig,
    #[serde(default)]
    pub slo: SloConfig,
    #[serde(default)]
    pub budget: crate::budget::BudgetConfig,
    #[serde(rename = "strategy", default)]
    pub strategies: Vec<toml::Spanned<StrategyConfig>>,
    /// The rows of `workload.arrival`'s trace, read when the scenario is loaded.
    #[serde(skip)]
    trace: Option<std::sync::Arc<[TraceRow]>>,
    /// The prompts of `workload.prompts`, read when the scenario is loaded.
    #[serde(skip)]
    prompts: Vec<std::sync::Arc<str>>,
}

/// Where requests go: the embedded mock, or a live endpoint speaking one of the wire
/// formats.
#[derive(Debug, Clone, Serialize, Deserialize)]
/// Written `kind = "…"` in `[target]`, read through [`tagged`].
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Target {
    /// The embedded mock server, started on 127.0.0.1 for the run.
    Mock {
        #[serde(default = "default_mock_model")]
        model: String,
        /// Which of the mock's OpenAI endpoints to call.
        #[serde(default)]
        api: OpenAiApi,
    },
    /// An OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, Ollama, LiteLLM):
    /// `POST <base_url>/v1/chat/completions`.
    Openai {
        base_url: BaseUrl,
        model: String,
        #[serde(default)]
        api: OpenAiApi,
        /// Environment variable holding the API key (absent: no key is sent).
        api_key_env: Option<EnvName>,
        /// Extra request headers (see `headers`).
        #[serde(default)]
        headers: RequestHeaders,
        /// Prices, for the cost estimate of the plan.
        price: Option<Price>,
        /// For servers that accept them (vLLM and its kin): send `ignore_eos` and
        /// `min_tokens = max_tokens`, so every completion is exactly `max_tokens` long.
        #[serde(default)]
        ignore_eos: bool,
    },
    /// The Anthropic Messages API: `POST <base_url>/v1/messages`.
    Anthropic {
        #[serde(default = "anthropic_url")]
        base_url: BaseUrl,
        model: String,
        #[serde(default = "anthropic_version")]
        anthropic_version: String,
        api_key_env: Option<EnvName>,
        #[serde(default)]
        headers: RequestHeaders,
        price: Option<Price>,
    },
}

/// Which OpenAI endpoint an OpenAI-compatible target is driven through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenAiApi {
    /// `POST /v1/chat/completions`.
    #[default]
    Chat,
    /// The legacy `POST /v1/completions`: a bare prompt, no chat template.
    Completions,
}

/// `[target.price]`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

/// The name of an environment variable. API keys come only from the environment: a
/// scenario names the variable, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnvName(pub String);

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(de::Error::custom(
                "must name an environment variable (letters, digits and _, such as OPENAI_API_KEY), not hold a key",
            ));
        }
        Ok(EnvName(s))
    }
}

fn anthropic_url() -> BaseUrl {
    BaseUrl("https://api.anthropic.com".into())
}

fn anthropic_version() -> String {
    "2023-06-01".into()
}

/// A server root such as `https://api.openai.com` or `http://localhost:8000`; a trailing
/// `/v1` (as the SDKs write base URLs) is accepted and dropped, since the API paths
/// carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(pub String);

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let url = reqwest::Url::parse(&s)
            .map_err(|e| de::Error::custom(format!("\"{s}\" is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(de::Error::custom(format!(
                "\"{s}\" must be an http:// or https:// URL with a host, e.g. http://localhost:8000"
            )));
        }
        let trimmed = s.trim_end_matches('/');
        Ok(BaseUrl(
            trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string(),
        ))
    }
}

impl BaseUrl {
    /// True for localhost, 127.0.0.0/8 and ::1: traffic that stays on this machine.
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.0) else {
            return false;
        };
        match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

impl Target {
    pub fn model(&self) -> &str {
        match self {
            Target::Mock { model, .. }
            | Target::Openai { model, .. }
            | Target::Anthropic { model, .. } => model,
        }
    }

    /// The environment variable holding a live target's API key, if it has one.
    pub fn api_key_env(&self) -> Option<&EnvName> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { api_key_env, .. } | Target::Anthropic { api_key_env, .. } => {
                api_key_env.as_ref()
            }
        }
    }

    pub fn price(&self) -> Option<Price> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { price, .. } | Target::Anthropic { price, .. } => *price,
        }
    }

    /// Whether to ask an OpenAI-compatible server for exactly `max_tokens` tokens.
    pub fn ignore_eos(&self) -> bool {
        matches!(
            self,
            Target::Openai {
                ignore_eos: true,
                ..
            }
        )
    }

    /// Where requests go, for messages: the base URL, or "the embedded mock", and the
    /// legacy endpoint when that is the one driven.
    pub fn describe(&self) -> String {
        let place = match self {
            Target::Mock { .. } => "the embedded mock".into(),
            Target::Openai { base_url, .. } | Target::Anthropic { base_url, .. } => {
                base_url.0.clone()
            }
        };
        match self {
            Target::Mock {
                api: OpenAiApi::Completions,
                ..
            }
            | Target::Openai {
                api: OpenAiApi::Completions,
                ..
            } => format!("{place} (legacy /v1/completions)"),
            _ => place,
        }
    }

    /// True when requests stay on this machine (the mock, or a loopback address).
    pub fn is_loopback(&self) -> bool {
        match self {
            Target::Mock { .. } => true,
            Target::Openai { base_url, .. } | Target::Anthropic { base_url, .. } => {
                base_url.is_loopback()
            }
        }
    }
}

fn default_mock_model() -> String {
    "llmbench-mock".into()
}

/// The `[mock]` section: how the embedded (or standalone) mock server behaves.
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
    pub threads: Count,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// A window in which the server answers nothing, as a provider hiccups.
    pub stall: Option<StallConfig>,
    /// Injected faults and their probabilities.
    #[serde(default)]
    pub faults: crate::mock::faults::FaultConfig,
    /// An inference server's capacity: decode slots, queue, prefill, load factor.
    pub capacity: Option<crate::mock::capacity::CapacityConfig>,
    /// Model ids listed by `GET /v1/models` (requests may name any model).
    #[serde(default = "default_models")]
    pub models: Vec<String>,
    /// Largest request body accepted; larger ones get the provider's 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: Count,
}

fn default_models() -> Vec<String> {
    vec![default_mock_model()]
}

/// 32 MiB, Anthropic's limit for Messages requests.
fn default_max_body() -> Count {
    Count(32 * 1024 * 1024)
}

/// `[mock.stall]`: requests arriving in `[at_s, at_s + duration_s)` after the strategy's
/// start get no response until the window ends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallConfig {
    pub at_s: f64,
    pub duration_s: Positive,
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
            faults: Default::default(),
            capacity: None,
            models: default_models(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_ttft() -> MillisDistribution {
    MillisDistribution(Distribution::Constant { value: 200.0 })
}

fn default_itl() -> MillisDistribution {
    MillisDistribution(Distribution::Constant { value: 20.0 })
}

fn one() -> Count {
    Count(1)
}

/// Provider-style limits, enforced as continuously refilled token buckets whose capacity
/// is the per-minute limit (a full bucket admits a whole minute's quota at once).
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// A file of real prompts (JSONL with a `prompt` field, or text with one prompt per
    /// line), relative to the scenario's folder; absent, prompts are synthetic.
    pub prompts: Option<std::path::PathBuf>,
    /// How many requests each strategy is offered (at most).
    pub requests: Option<Count>,
    /// Offer arrivals for this long at most (open-loop schedules).
    pub duration_s: Option<Positive>,
    /// When work items become available.
    #[serde(default, deserialize_with = "tagged::kind")]
    pub arrival: ArrivalConfig,
    /// Seed of the work-item draws (arrival times, prompt and output lengths).
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub stream: bool,
    #[serde(default = "default_prompt_tokens")]
    pub prompt_tokens: TokenDistribution,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: TokenDistribution,
    /// CPU time spent after each response (tokenising, parsing…), in microseconds.
    pub cpu_work_us: Option<Count>,
    /// Run that work with `spawn_blocking` instead of on the runtime's own threads.
    #[serde(default)]
    pub offload: bool,
}

impl WorkloadConfig {
    fn check(&self) -> Result<(), String> {
        self.arrival.check().map_err(|m| format!("arrival: {m}"))?;
        match (&self.arrival, self.requests, self.duration_s) {
            (ArrivalConfig::Batch, None, _) => Err(
                "a batch needs `requests`: how many work items are available at the start".into(),
            ),
            (ArrivalConfig::Batch, Some(_), Some(_)) => Err(
                "`duration_s` does not apply to a batch (everything arrives at once); remove it"
                    .into(),
            ),
            (arrival, None, None) if !arrival.is_finite() => Err(
                "an open-ended arrival schedule needs a bound: `requests`, `duration_s`, or both"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_prompt_tokens() -> TokenDistribution {
    TokenDistribution(Distribution::Constant { value: 256.0 })
}

fn default_max_tokens() -> TokenDistribution {
    TokenDistribution(Distribution::Constant { value: 128.0 })
}

/// One `[[strategy]]` entry. Checks that involve several keys (a `limit` the kind needs
/// or refuses, unique labels) run after parsing, in [`Scenario::check_strategies`], where
/// each entry's own position is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    pub kind: StrategyKind,
    /// In-flight cap, for the kinds that have one; a list is a sweep, one strategy per
    /// value once the scenario is read (see [`Limit`]).
    #[serde(rename = "limit")]
    limits: Option<Limit>,
    /// Most arrived items that may wait to be sent; arrivals beyond it are dropped and
    /// counted. Absent: unbounded.
    pub max_queue: Option<Count>,
    /// The async runtime the strategy runs on.
    #[serde(default)]
    pub runtime: crate::runtime::RuntimeKind,
    /// Worker threads of a `tokio-multi` runtime (default: one per core).
    pub workers: Option<Count>,
    /// The HTTP library (default: reqwest, or hyper on tokio-uring).
    #[serde(rename = "client")]
    pub http_library: Option<HttpLibrary>,
    /// Name in tables and file names.
    #[serde(rename = "label")]
    pub custom_label: Option<Name>,
}

impl StrategyConfig {
    /// The in-flight cap (after [`StrategyConfig::sweep`], one per entry).
    pub fn limit(&self) -> Option<Count> {
        match &self.limits {
            Some(Limit::One(limit)) => Some(*limit),
            Some(Limit::Sweep(limits)) => limits.first().copied(),
            None => None,
        }
    }

    /// The label: `label` if given, else the kind and its limit (`semaphore-8`).
    pub fn label(&self) -> String {
        match (&self.custom_label, self.limit()) {
            (Some(label), _) => label.0.clone(),
            (None, Some(limit)) => format!("{}-{}", self.kind, limit.0),
            (None, None) => self.kind.to_string(),
        }
    }

    /// The entries a `limit` sweep stands for, one per value, labelled `kind-limit` (or
    /// `label-limit` when the entry names itself); any other entry as it is.
    fn sweep(entry: toml::Spanned<StrategyConfig>) -> Vec<toml::Spanned<StrategyConfig>> {
        let span = entry.span();
        let config = entry.into_inner();
        let Some(Limit::Sweep(limits)) = &config.limits else {
            return vec![toml::Spanned::new(span, config)];
        };
        limits
            .iter()
            .map(|&limit| {
                let mut one = config.clone();
                one.limits = Some(Limit::One(limit));
                one.custom_label = config
                    .custom_label
                    .as_ref()
                    .map(|label| Name(format!("{label}-{}", limit.0)));
                toml::Spanned::new(span.clone(), one)
            })
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        // A sweep's labels are built (`label-limit`): check them as a written one is.
        if let Some(label) = &self.custom_label {
            Name::check(&label.0)?;
        }
        let kind = self.kind;
        match (kind.takes_limit(), self.limit()) {
            (true, None) => Err(format!(
                "strategy kind \"{kind}\" needs `limit`: the most requests in flight at once (at least 1)"
            )),
            (false, Some(_)) => Err(format!(
                "strategy kind \"{kind}\" takes no `limit`; remove it"
            )),
            _ if self.workers.is_some() && self.runtime != RuntimeKind::TokioMulti => Err(format!(
                "`workers` applies to runtime \"tokio-multi\" only: runtime \"{}\" has exactly one thread",
                self.runtime.as_str()
            )),
            _ => self.runtime.refuses(self.library()).map_or(Ok(()), Err),
        }
    }

    /// The HTTP library the strategy sends with.
    pub fn library(&self) -> HttpLibrary {
        self.http_library
            .unwrap_or_else(|| self.runtime.default_library())
    }

    /// Why this strategy cannot reach `target`, if it cannot.
    fn check_target(&self, target: &Target) -> Result<(), String> {
        let url = match target {
            Target::Mock { .. } => return Ok(()),
            Target::Openai { base_url, .. } | Target::Anthropic { base_url, .. } => &base_url.0,
        };
        if self.library() == HttpLibrary::Hyper && !url.starts_with("http://") {
            return Err(format!(
                "the hyper client (used on runtime \"{}\") speaks plain http:// only, and target.base_url is {url}; use a tokio runtime with client = \"reqwest\" for https",
                self.runtime.as_str()
            ));
        }
        Ok(())
    }
}

/// The `[client]` section: timeouts of each attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Connecting (TCP and TLS).
    #[serde(default = "ten")]
    pub connect_timeout_s: Positive,
    /// The whole attempt, from sending to the last byte.
    #[serde(default = "five_minutes")]
    pub timeout_s: Positive,
    /// Silence between two reads of the response: a stalled stream fails as a timeout
    /// instead of hanging the run.
    #[serde(default = "one_minute")]
    pub idle_timeout_s: Positive,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout_s: ten(),
            timeout_s: five_minutes(),
            idle_timeout_s: one_minute(),
        }
    }
}

fn ten() -> Positive {
    Positive(10.0)
}

fn five_minutes() -> Positive {
    Positive(300.0)
}

fn one_minute() -> Positive {
    Positive(60.0)
}

/// A finite number greater than 0 (rates, durations, scale factors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Positive(pub f64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match f64::deserialize(d)? {
            v if v.is_finite() && v > 0.0 => Ok(Positive(v)),
            v => Err(de::Error::custom(format!(
                "must be a number greater than 0, got {v}"
            ))),
        }
    }
}

/// A whole number of at least 1 (request counts, limits, threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i64::deserialize(d)? {
            v if v >= 1 => Ok(Count(v as u64)),
            v => Err(de::Error::custom(format!("must be at least 1, got {v}"))),
        }
    }
}

impl Count {
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A strategy's `limit`: one in-flight cap, or a list of them, a concurrency sweep run
/// as one strategy per value (`limit = [1, 4, 16, 64]` → `joinset-1` … `joinset-64`):
/// the shortest way to ask "what concurrency?".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    One(Count),
    Sweep(Vec<Count>),
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl<'de> de::Visitor<'de> for LimitVisitor {
    type Value = Limit;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number of at least 1, or a list of them (a sweep), such as [1, 4, 16]")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
        Count::deserialize(de::value::I64Deserializer::new(v)).map(Limit::One)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Limit, A::Error> {
        let mut limits: Vec<Count> = Vec::new();
        while let Some(limit) = seq.next_element::<Count>()? {
            if limits.contains(&limit) {
                return Err(de::Error::custom(format!(
                    "{} appears twice in the sweep: each limit runs once",
                    limit.0
                )));
            }
            limits.push(limit);
        }
        if limits.is_empty() {
            return Err(de::Error::custom(
                "an empty sweep runs nothing: give at least one limit, such as [1, 4, 16]",
            ));
        }
        Ok(Limit::Sweep(limits))
    }
}

/// A name used in file names: letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::check(&s).map_err(de::Error::custom)?;
        Ok(Name(s))
    }
}

impl Name {
    /// Why `s` cannot name a file, if it cannot.
    fn check(s: &str) -> Result<(), String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) || s.starts_with('.') {
            return Err(format!(
                "\"{s}\" is not a usable name: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Scenario::parse_in(&src, &path.display().to_string(), folder)
    }

    /// Parses and validates scenario text; `origin` names it in errors, relative paths
    /// in it are taken from the current folder.
    pub fn parse(src: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_in(src, origin, Path::new("."))
    }

    /// As [`Scenario::parse`], with relative paths taken from `folder`.
    pub fn parse_in(src: &str, origin: &str, folder: &Path) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = parse_toml(src, origin)?;
        let entries = std::mem::take(&mut scenario.strategies);
        scenario.strategies = entries
            .into_iter()
            .flat_map(StrategyConfig::sweep)
            .collect();
        scenario.check_strategies(src, origin)?;
        let workload = &scenario.workload_entry;
        workload.get_ref().check().map_err(|message| {
            ScenarioError::invalid(
                origin,
                src,
                Some(workload.span()),
                "workload".into(),
                &message,
            )
        })?;
        if scenario.budget.max_cost.is_some() && scenario.target.price().is_none() {
            return Err(ScenarioError::invalid(
                origin,
                src,
                None,
                "budget.max_cost".into(),
                "needs prices to count cost: set [target.price] (input_per_million, output_per_million)",
            ));
        }
        if let Some(path) = &workload.get_ref().prompts {
            scenario.prompts = crate::workload::prompts::load(&folder.join(path))?;
        }
        if let ArrivalConfig::Trace { path, time_scale } = &workload.get_ref().arrival {
            scenario.trace = Some(trace::load(&folder.join(path), time_scale.0)?.into());
        }
        Ok(scenario)
    }

    fn check_strategies(&self, src: &str, origin: &str) -> Result<(), ScenarioError> {
        if self.strategies.is_empty() {
            return Err(ScenarioError::invalid(
                origin,
                src,
                None,
                "strategy".into(),
                "no strategies to run: add at least one [[strategy]] table, e.g. kind = \"serial\"",
            ));
        }
        let mut seen = HashSet::new();
        // Entries of one sweep share their table's span; `i` counts tables, as written.
        let mut i = 0;
        for (n, entry) in self.strategies.iter().enumerate() {
            if n > 0 && self.strategies[n - 1].span() != entry.span() {
                i += 1;
            }
            let at = |key: &str, message: &str| {
                ScenarioError::invalid(
                    origin,
                    src,
                    Some(entry.span()),
                    format!("strategy[{i}]{key}"),
                    message,
                )
            };
            let config = entry.get_ref();
            config.check().map_err(|message| at("", &message))?;
            config
                .check_target(&self.target)
                .map_err(|message| at(".client", &message))?;
            let label = config.label();
            if !seen.insert(label.clone()) {
                return Err(at(
                    ".label",
                    &format!(
                        "label \"{label}\" is used by an earlier strategy; give this one a distinct `label`"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Keeps only the strategies with these labels (all when `labels` is empty), in the
    /// scenario's order: `llmbench run --strategy` re-runs part of a comparison.
    pub fn keep_strategies(&mut self, labels: &[String]) -> Result<(), String> {
        let known: Vec<String> = self.strategies().map(|s| s.label()).collect();
        if let Some(unknown) = labels.iter().find(|l| !known.contains(l)) {
            return Err(format!(
                "no strategy is labelled \"{unknown}\"; the scenario's strategies are: {}",
                known.join(", ")
            ));
        }
        if !labels.is_empty() {
            self.strategies
                .retain(|s| labels.contains(&s.get_ref().label()));
        }
        Ok(())
    }

    /// The strategy entries without their source positions.
    pub fn strategies(&self) -> impl Iterator<Item = &StrategyConfig> {
        self.strategies.iter().map(|s| s.get_ref())
    }

    pub fn workload(&self) -> &WorkloadConfig {
        self.workload_entry.get_ref()
    }

    /// The work items every strategy is offered.
    pub fn work_items(&self) -> Vec<WorkItem> {
        crate::workload::generate(self.workload(), self.trace.as_deref(), &self.prompts)
    }

    /// Seed of the mock's draws.
    pub fn mock_seed(&self) -> u64 {
        self.mock.seed.unwrap_or(self.workload().seed)
    }
}

/// Deserializes TOML into `T`, reporting errors with position, key path and message.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    src: &str,
    origin: &str,
) -> Result<T, ScenarioError> {
    let invalid = |e: toml::de::Error, key: String| {
        ScenarioError::invalid(origin, src, e.span(), key, e.message())
    };
    let de = toml::Deserializer::parse(src).map_err(|e| invalid(e, String::new()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // `toml::Spanned` shows up in the path as a private field; users never wrote it.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        invalid(e.into_inner(), key)
    })
}

/// The `[mock]` section of a scenario file (other sections are not read), and the seed
/// the mock draws from: `mock.seed`, else `workload.seed`, else 0.
pub fn load_mock_config(path: &Path) -> Result<(MockConfig, u64), ScenarioError> {
    #[derive(Deserialize)]
    struct MockOnly {
        #[serde(default)]
        mock: MockConfig,
        workload: Option<SeedOnly>,
    }
    #[derive(Deserialize)]
    struct SeedOnly {
        seed: Option<u64>,
    }
    let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed: MockOnly = parse_toml(&src, &path.display().to_string())?;
    let seed = parsed
        .mock
        .seed
        .or(parsed.workload.and_then(|w| w.seed))
        .unwrap_or(0);
    Ok((parsed.mock, seed))
}

#[cfg(test)]
mod tests;
