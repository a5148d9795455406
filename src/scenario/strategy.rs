//! `[[strategy]]`: one entry per strategy compared: its kind, in-flight limit (or a
//! sweep of them), queue bound, runtime, HTTP library and HTTP version. The strategies
//! themselves are built by the strategy stage.

use super::values::{Concurrency, Name, RequestCount, ThreadCount};
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
    /// The HTTP library (default: reqwest, or hyper on tokio-uring).
    #[serde(rename = "client")]
    pub http_library: Option<HttpLibrary>,
    /// HTTP/2 only: with prior knowledge (h2c) on an `http://` target, and as the one
    /// protocol offered by ALPN on an `https://` one. Off, `http://` is HTTP/1.1 and
    /// `https://` is whatever the server picks of `h2` and `http/1.1`.
    #[serde(default)]
    pub http2: bool,
    /// Name in tables and file names.
    #[serde(rename = "label")]
    pub custom_label: Option<Name>,
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

    pub(super) fn check(&self) -> Result<(), String> {
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
}

impl StrategyKind {
    /// Whether the kind is parameterised by an in-flight `limit`.
    pub fn takes_limit(self) -> bool {
        match self {
            StrategyKind::Serial | StrategyKind::JoinAll => false,
            StrategyKind::Semaphore | StrategyKind::JoinSet => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Serial => "serial",
            StrategyKind::JoinAll => "join_all",
            StrategyKind::Semaphore => "semaphore",
            StrategyKind::JoinSet => "joinset",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `runtime` of a `[[strategy]]` entry: the async runtime it runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
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

    /// The HTTP library used when a strategy names none: reqwest on tokio's own
    /// sockets, hyper on io_uring (reqwest cannot use io_uring sockets).
    pub fn default_library(self) -> HttpLibrary {
        match self {
            RuntimeKind::TokioUring => HttpLibrary::Hyper,
            RuntimeKind::TokioMulti | RuntimeKind::TokioCurrent => HttpLibrary::Reqwest,
        }
    }

    /// Why `library` cannot run on this runtime, if it cannot.
    pub fn refuses(self, library: HttpLibrary) -> Option<String> {
        (self == RuntimeKind::TokioUring && library == HttpLibrary::Reqwest).then(|| {
            "reqwest does its I/O through tokio's epoll sockets, so on runtime \"tokio-uring\" it would not use io_uring at all; use client = \"hyper\" (the default there)".into()
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
