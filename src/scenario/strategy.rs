//! `[[strategy]]`: one entry per strategy compared: its kind, in-flight limit (or a
//! sweep of them), queue bound, runtime, HTTP library and HTTP version, and the keys of
//! the kinds that respect a quota (`rate`'s quota and headroom, `adaptive`'s start and
//! signal). The strategies themselves are built by the strategy stage.

use super::values::{
    Concurrency, CopyCount, Count, Fraction, Name, RequestCount, Seconds, ThreadCount,
};
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer};
use std::fmt;

/// One `[[strategy]]` entry. Checks that involve several keys (a `limit` the kind needs
/// or refuses, unique labels) run after parsing, in [`Scenario::check_strategies`], where
/// each entry's own position is known.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    pub kind: StrategyKind,
    /// In-flight cap, for the kinds that have one; a list is a sweep, one strategy per
    /// value once the scenario is read (see [`Limit`]).
    #[serde(rename = "limit")]
    limits: Option<Limit>,
    /// Most arrived items that may wait to be sent; arrivals beyond it are dropped and
    /// counted. Absent: unbounded.
    pub max_queue: Option<RequestCount>,
    /// The async runtime the strategy runs on.
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// Worker threads of a `tokio-multi` runtime (default: one per core).
    pub workers: Option<ThreadCount>,
    /// The HTTP library (default: hyper).
    #[serde(rename = "client")]
    pub http_library: Option<HttpLibrary>,
    /// HTTP/2 only: with prior knowledge (h2c) on an `http://` target, and as the one
    /// protocol offered by ALPN on an `https://` one. Off, `http://` is HTTP/1.1 and
    /// `https://` is whatever the server picks of `h2` and `http/1.1`.
    #[serde(default)]
    pub http2: bool,
    /// Independent copies of the strategy run side by side on one target (clients of
    /// one API key): each with its own state (a limiter, an adaptive limit), the work
    /// items dealt round robin (item `i` to copy `i mod copies`).
    pub copies: Option<CopyCount>,
    /// Name in tables and file names.
    #[serde(rename = "label")]
    pub custom_label: Option<Name>,
    /// `rate`: the provider's requests per minute it paces itself to.
    pub rpm: Option<Count>,
    /// `rate`: OpenAI tokens per minute (a request charged max(`max_tokens`, prompt)).
    pub tpm: Option<Count>,
    /// `rate`: Anthropic input tokens per minute (a request charged its prompt).
    pub itpm: Option<Count>,
    /// `rate`: Anthropic output tokens per minute (a request charged its `max_tokens`,
    /// the unused part given back when it ends).
    pub otpm: Option<Count>,
    /// `rate`: the share of the quota used (default [`RATE_HEADROOM`]).
    pub headroom: Option<Fraction>,
    /// `adaptive`: the limit it starts from (default [`ADAPTIVE_INITIAL_LIMIT`], or the
    /// ceiling if lower).
    pub initial_limit: Option<Concurrency>,
    /// `adaptive`: what it adapts to.
    pub signal: Option<AdaptiveSignal>,
    /// `external`: the program and its arguments (see [`super::external`]).
    pub command: Option<super::ProgramCommand>,
    /// `external`: how long the program may run before it is killed (default: the
    /// schedule's length plus `[client] timeout_s`).
    pub timeout_s: Option<Seconds>,
}

/// The share of its quota a `rate` strategy uses unless told: a little under the quota,
/// so that clock differences and requests in flight at a provider never tip it over.
pub const RATE_HEADROOM: f64 = 0.98;
/// An `adaptive` strategy's ceiling when it has no `limit`.
pub const ADAPTIVE_CEILING: u64 = 256;
/// An `adaptive` strategy's starting limit when it has no `initial_limit`.
pub const ADAPTIVE_INITIAL_LIMIT: u64 = 4;

/// What an `adaptive` strategy reads to adapt its limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdaptiveSignal {
    /// The provider's refusals: AIMD on 429s, pausing for `retry-after`.
    #[default]
    RateLimit,
    /// Latency: Vegas-style, for servers that queue instead of refusing.
    Latency,
}

impl AdaptiveSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            AdaptiveSignal::RateLimit => "rate_limit",
            AdaptiveSignal::Latency => "latency",
        }
    }
}

/// Whether a kind needs, accepts or refuses `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitRule {
    Required,
    Optional,
    Refused,
}

impl StrategyConfig {
    /// The in-flight cap (after [`StrategyConfig::sweep`], one per entry).
    pub fn limit(&self) -> Option<Concurrency> {
        match &self.limits {
            Some(Limit::One(limit)) => Some(*limit),
            Some(Limit::Sweep(limits)) => limits.first().copied(),
            None => None,
        }
    }

    /// The same strategy with one in-flight `limit` (a capacity search's probe).
    pub fn with_limit(&self, limit: Concurrency) -> StrategyConfig {
        StrategyConfig {
            limits: Some(Limit::One(limit)),
            ..self.clone()
        }
    }

    /// The label: `label` if given, else the kind and its limit (`semaphore-8`), with
    /// the signal of a latency-driven `adaptive` (`adaptive-latency-32`).
    pub fn label(&self) -> String {
        let kind = match (self.signal, &self.command) {
            (Some(AdaptiveSignal::Latency), _) => format!("{}-latency", self.kind),
            (_, Some(command)) => command.name(),
            _ => self.kind.to_string(),
        };
        let copies = match self.copies() {
            1 => String::new(),
            n => format!("-x{n}"),
        };
        match (&self.custom_label, self.limit()) {
            (Some(label), _) => label.0.clone(),
            (None, Some(limit)) => format!("{kind}-{}{copies}", limit.0),
            (None, None) => format!("{kind}{copies}"),
        }
    }

    /// How many copies of the strategy run side by side (1 without `copies`).
    pub fn copies(&self) -> usize {
        self.copies.map_or(1, CopyCount::get)
    }

    /// The share of the quota a `rate` strategy uses.
    pub fn headroom(&self) -> f64 {
        self.headroom.map_or(RATE_HEADROOM, |h| h.0)
    }

    /// The most requests it may ever hold in flight, if it caps them: `limit`, or an
    /// `adaptive` strategy's default ceiling.
    pub fn in_flight_cap(&self) -> Option<u64> {
        match (self.kind, self.limit()) {
            (_, Some(limit)) => Some(limit.0),
            (StrategyKind::Serial, None) => Some(1),
            (StrategyKind::Adaptive, None) => Some(ADAPTIVE_CEILING),
            _ => None,
        }
    }

    /// An `adaptive` strategy's starting limit, never above its ceiling.
    pub fn start_limit(&self) -> u64 {
        let ceiling = self.in_flight_cap().unwrap_or(ADAPTIVE_CEILING);
        self.initial_limit
            .map_or(ADAPTIVE_INITIAL_LIMIT, |l| l.0)
            .min(ceiling)
    }

    /// The keys present that only a kind other than this one takes, with that kind.
    fn foreign_keys(&self) -> Vec<(&'static str, StrategyKind)> {
        let rate = [
            ("rpm", self.rpm.is_some()),
            ("tpm", self.tpm.is_some()),
            ("itpm", self.itpm.is_some()),
            ("otpm", self.otpm.is_some()),
            ("headroom", self.headroom.is_some()),
        ]
        .map(|(key, set)| (key, set, StrategyKind::Rate));
        let adaptive = [
            ("initial_limit", self.initial_limit.is_some()),
            ("signal", self.signal.is_some()),
        ]
        .map(|(key, set)| (key, set, StrategyKind::Adaptive));
        let external = [
            ("command", self.command.is_some()),
            ("timeout_s", self.timeout_s.is_some()),
        ]
        .map(|(key, set)| (key, set, StrategyKind::External));
        rate.into_iter()
            .chain(adaptive)
            .chain(external)
            .filter(|&(_, set, owner)| set && owner != self.kind)
            .map(|(key, _, owner)| (key, owner))
            .collect()
    }

    /// The checks of the keys only some kinds take: each refused with its name where it
    /// does not apply, and `rate`'s quota and `adaptive`'s start checked.
    fn check_kind_keys(&self) -> Result<(), (String, String)> {
        let kind = self.kind;
        if let Some((key, owner)) = self.foreign_keys().first() {
            return Err((
                format!(".{key}"),
                format!(
                    "`{key}` applies to strategy kind \"{owner}\" only, not \"{kind}\"; remove it"
                ),
            ));
        }
        let no_quota = [self.rpm, self.tpm, self.itpm, self.otpm]
            .iter()
            .all(Option::is_none);
        if kind == StrategyKind::Rate && no_quota {
            return Err((
                String::new(),
                "strategy kind \"rate\" needs a quota to pace itself to: at least one of `rpm`, `tpm`, `itpm`, `otpm` (per minute, as the provider states them)".into(),
            ));
        }
        if kind == StrategyKind::External {
            return self.check_external();
        }
        if let (Some(start), Some(ceiling)) = (self.initial_limit, self.limit())
            && start.0 > ceiling.0
        {
            return Err((
                ".initial_limit".into(),
                format!(
                    "{} is above `limit` ({}), the most the adaptive limit may reach; lower it or raise `limit`",
                    start.0, ceiling.0
                ),
            ));
        }
        Ok(())
    }

    /// An `external` strategy needs its `command`; the keys about llmbench's own sending
    /// (its HTTP client, copies, queue) do not reach into a program and are refused.
    fn check_external(&self) -> Result<(), (String, String)> {
        if self.command.is_none() {
            return Err((
                String::new(),
                "strategy kind \"external\" needs `command`: the program and its arguments, such as [\"python3\", \"clients/python/gather.py\"]".into(),
            ));
        }
        let refused = [
            ("client", self.http_library.is_some()),
            ("http2", self.http2),
            ("copies", self.copies.is_some()),
            ("max_queue", self.max_queue.is_some()),
            ("workers", self.workers.is_some()),
        ];
        match refused.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err((
                format!(".{key}"),
                format!(
                    "`{key}` is about llmbench's own HTTP client and does not reach into an external program; remove it (the program sends its own requests)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The entries a `limit` sweep stands for, one per value, labelled `kind-limit` (or
    /// `label-limit` when the entry names itself); any other entry as it is.
    pub(super) fn sweep(
        entry: toml::Spanned<StrategyConfig>,
    ) -> Vec<toml::Spanned<StrategyConfig>> {
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

    /// Checks the keys together; an error names the key it is about (`.rpm`), or none
    /// (`""`) when it is about the entry.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        // A sweep's labels are built (`label-limit`): check them as a written one is.
        if let Some(label) = &self.custom_label {
            Name::check(&label.0).map_err(|e| (String::new(), e))?;
        }
        self.check_kind_keys()?;
        self.check_common().map_err(|e| (String::new(), e))
    }

    fn check_common(&self) -> Result<(), String> {
        let kind = self.kind;
        match (kind.limit_rule(), self.limit()) {
            (LimitRule::Required, None) => Err(format!(
                "strategy kind \"{kind}\" needs `limit`: the most requests in flight at once (at least 1)"
            )),
            (LimitRule::Refused, Some(_)) => Err(format!(
                "strategy kind \"{kind}\" takes no `limit`; remove it"
            )),
            _ if self.workers.is_some() && self.runtime != RuntimeKind::TokioMulti => Err(format!(
                "`workers` applies to runtime \"tokio-multi\" only: runtime \"{}\" has exactly one thread",
                self.runtime.as_str()
            )),
            _ => self.runtime.refuses(self.library()).map_or(Ok(()), Err),
        }
    }

    /// The HTTP library the strategy sends with: hyper unless it names reqwest.
    pub fn library(&self) -> HttpLibrary {
        self.http_library.unwrap_or(HttpLibrary::Hyper)
    }
}

/// The `kind` of a `[[strategy]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    Serial,
    JoinAll,
    Semaphore,
    #[serde(rename = "joinset")]
    JoinSet,
    /// Paced to a per-minute quota (requests and tokens), optionally capped in flight.
    Rate,
    /// Concurrency that adapts: AIMD on 429s, or Vegas-style on latency.
    Adaptive,
    /// A program of the user's own (any language) that sends the requests itself,
    /// given the work items on its stdin at their due times.
    External,
}

impl StrategyKind {
    /// Whether the kind needs, accepts or refuses an in-flight `limit`: `rate` may be
    /// capped too, `adaptive` takes it as its ceiling.
    pub fn limit_rule(self) -> LimitRule {
        match self {
            StrategyKind::Serial | StrategyKind::JoinAll => LimitRule::Refused,
            StrategyKind::Semaphore | StrategyKind::JoinSet => LimitRule::Required,
            StrategyKind::Rate | StrategyKind::Adaptive | StrategyKind::External => {
                LimitRule::Optional
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Serial => "serial",
            StrategyKind::JoinAll => "join_all",
            StrategyKind::Semaphore => "semaphore",
            StrategyKind::JoinSet => "joinset",
            StrategyKind::Rate => "rate",
            StrategyKind::Adaptive => "adaptive",
            StrategyKind::External => "external",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `runtime` of a `[[strategy]]` entry: the async runtime it runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// tokio's multi-threaded work-stealing scheduler.
    #[default]
    TokioMulti,
    /// tokio on one thread: every task, and every blocking call, shares it.
    TokioCurrent,
    /// tokio-uring: a current-thread tokio runtime whose sockets are driven by io_uring
    /// (Linux 5.11 or later).
    TokioUring,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::TokioMulti => "tokio-multi",
            RuntimeKind::TokioCurrent => "tokio-current",
            RuntimeKind::TokioUring => "tokio-uring",
        }
    }

    /// Why `library` cannot run on this runtime, if it cannot.
    pub fn refuses(self, library: HttpLibrary) -> Option<String> {
        (self == RuntimeKind::TokioUring && library == HttpLibrary::Reqwest).then(|| {
            "reqwest does its I/O through tokio's epoll sockets, so on runtime \"tokio-uring\" it would not use io_uring at all; use client = \"hyper\" (the default)".into()
        })
    }
}

/// The `client` of a `[[strategy]]` entry: which HTTP library sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpLibrary {
    /// reqwest on tokio: what most Rust applications use.
    Reqwest,
    /// hyper's connection API (HTTP/1.1 and HTTP/2, plain or over rustls) with a small
    /// pool of our own: the same code on tokio sockets and on io_uring sockets, so the
    /// two runtimes can be compared without a change of library.
    Hyper,
}

impl HttpLibrary {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpLibrary::Reqwest => "reqwest",
            HttpLibrary::Hyper => "hyper",
        }
    }
}

/// A strategy's `limit`: one in-flight cap, or a list of them, a concurrency sweep run
/// as one strategy per value (`limit = [1, 4, 16, 64]` → `joinset-1` … `joinset-64`):
/// the shortest way to ask "what concurrency?".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    One(Concurrency),
    Sweep(Vec<Concurrency>),
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
        f.write_str(
            "a whole number from 1 to 1,000,000, or a list of them (a sweep), such as [1, 4, 16]",
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
        Concurrency::deserialize(de::value::I64Deserializer::new(v)).map(Limit::One)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Limit, A::Error> {
        let mut limits: Vec<Concurrency> = Vec::new();
        while let Some(limit) = seq.next_element::<Concurrency>()? {
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
