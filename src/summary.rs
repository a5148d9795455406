//! The saved-results schema: what `summary.json` holds (the run's facts and, per
//! strategy, counts, throughput and latency percentiles), how it is built from a
//! [`RunResult`], and how it is read back from a results folder.
//!
//! Also the judgement of the client's own health ([`ClientHealth`]): whether the
//! client, not the server, was the bottleneck of a strategy, decided from the saved
//! figures alone so that every reader of the file reaches the same verdict.
//!
//! Also what says whether a saved run is complete: the `complete` and
//! `missing_strategies` fields, and the [`RUNNING`] marker a run leaves in its folder
//! until it ends ([`incompleteness`] reads both).
//!
//! What the report side (`report`, `compare`, `slo`) reads of a saved run, so it
//! sits below them and imports none of them. Field names and layout are the file
//! format: renaming one breaks every saved run (a newer field gets `#[serde(default)]`
//! so that older files still load).

use crate::machine::Machine;
use crate::metric::Metric;
use crate::recorder::timeline::LimitSeries;
use crate::result::{MockReport, RunResult, SkippedStrategy, StrategyResult};
use crate::shard::{MergeRecord, ShardRecord, StartRecord};
use crate::strategy::ProgramReport;
use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The file name of the summary inside a results folder.
pub const FILE: &str = "summary.json";

/// The file that marks a results folder while its run is in progress: created with the
/// folder, removed when the run ends by any path but a kill. It holds the process id
/// ([`running_marker`]), so a reader can tell a run in progress from one that died.
pub const RUNNING: &str = ".running";

/// Whether a summary that predates the `complete` field was complete. Such a file has
/// no `.running` marker to go by (older versions wrote none) and its writer is long
/// gone; older versions rewrote the summary after every strategy, so it is complete
/// unless it says `interrupted`, which [`incompleteness`] checks separately. Calling
/// every old run incomplete would bury the one warning that matters under noise.
fn older_files_were_complete() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub description: String,
    pub scenario_file: String,
    pub workload_seed: u64,
    pub mock_seed: Option<u64>,
    pub tool_version: String,
    pub machine: Machine,
    pub started_at: String,
    pub interrupted: bool,
    /// True once the run saved its last strategy and ended on its own: not
    /// interrupted, not stopped by an error, and no planned strategy missing. False
    /// in every summary written while the run is going (one is written after each
    /// strategy), so a run that dies leaves `false` behind.
    #[serde(default = "older_files_were_complete")]
    pub complete: bool,
    /// Labels of the planned strategies that never ran or did not finish (an
    /// interrupted strategy's partial results are under `strategies` and its label
    /// here), in plan order; `[]` for a complete run.
    #[serde(default)]
    pub missing_strategies: Vec<String>,
    /// Why the run stopped sending early (a `[budget]` cap), if it did.
    #[serde(default)]
    pub stopped: Option<String>,
    pub strategies: Vec<StrategySummary>,
    /// Strategies not run because their runtime is not available here.
    #[serde(default)]
    pub skipped: Vec<SkippedStrategy>,
    /// A capacity search's answer (`llmbench capacity`): its probes are `strategies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::search::CapacityAnswer>,
    /// Which part of a sharded run this is (`--shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// How the run started against a common start (`--start-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartRecord>,
    /// The parts this summary was merged from (`llmbench merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategySummary {
    pub label: String,
    pub kind: String,
    pub limit: Option<u64>,
    /// The runtime the strategy ran on, with its thread count.
    #[serde(default)]
    pub runtime: String,
    /// The HTTP library that sent the requests (`reqwest`, `hyper`).
    #[serde(default)]
    pub client: String,
    /// The HTTP versions the responses came in (`HTTP/1.1`, `HTTP/2`, or both joined by
    /// ` + `); empty when no response came, and in summaries written before it was kept.
    #[serde(default)]
    pub http_version: String,
    /// CPU seconds the load generator used for this strategy (the embedded mock's
    /// excluded); absent where it cannot be measured.
    #[serde(default)]
    pub client_cpu_s: Option<f64>,
    /// Of `client_cpu_s`, what the runtime-lag probe's own wake-ups cost, estimated
    /// (`RuntimeHealth::probe_cpu`); absent for an external program and where not
    /// measured.
    #[serde(default)]
    pub probe_cpu_s: Option<f64>,
    /// The client's own health while the strategy ran, and whether it was the
    /// bottleneck; absent in summaries written before it was measured.
    #[serde(default)]
    pub client_health: Option<ClientHealth>,
    pub interrupted: bool,
    pub requests: RequestCounts,
    pub makespan_s: f64,
    /// Arrivals offered per second by the schedule; `null` for a batch.
    pub scheduled_rate_per_s: Option<f64>,
    /// Sends per second actually achieved, measured like the scheduled rate.
    pub achieved_send_rate_per_s: Option<f64>,
    pub requests_per_s: f64,
    pub output_tokens: u64,
    pub output_tokens_per_s: f64,
    /// Latency percentiles in milliseconds, keyed by [`Metric::name`]: `e2e`,
    /// `e2e_corrected`, `ttft`, `ttft_corrected`, `itl`, `tpot`, `dispatch_delay`. Keyed
    /// by name, not by [`Metric`], so the keys stay in the file's alphabetical order and
    /// a file naming a metric this version lacks still loads.
    pub latency_ms: BTreeMap<String, Percentiles>,
    pub mock: Option<MockReport>,
    /// The limit the strategy had in effect over time, for the kinds that keep one
    /// (`adaptive`: requests in flight; `rate`: the limiter's requests per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_series: Option<LimitSeries>,
    /// With `copies`, each copy's share of the work (item `i` was copy `i mod copies`'s):
    /// whether clients sharing one key were served alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyShare>,
    /// What the server's prompt cache served, when its usage reported any cached tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<PromptCacheHits>,
    /// An `external` strategy's program: how it ended and what it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramReport>,
}

/// Of the answered requests, those whose usage reported prompt tokens read from cache.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PromptCacheHits {
    /// Answered requests with any cached prompt tokens.
    pub requests_hit: u64,
    /// `requests_hit` over the answered requests.
    pub hit_rate: f64,
    pub cached_tokens: u64,
    /// `cached_tokens` over the answered requests' prompt tokens.
    pub cached_share: f64,
    /// The answered requests and their prompt tokens: the denominators, kept so that
    /// the parts of a sharded run add.
    #[serde(default)]
    pub answered: u64,
    #[serde(default)]
    pub prompt_tokens: u64,
}

impl PromptCacheHits {
    /// The figures of `answered` requests with `prompt_tokens` in all, `requests_hit` of
    /// which read `cached_tokens` from the cache; `None` when nothing was cached.
    pub fn from_counts(
        requests_hit: u64,
        answered: u64,
        cached_tokens: u64,
        prompt_tokens: u64,
    ) -> Option<Self> {
        (cached_tokens > 0).then(|| Self {
            requests_hit,
            hit_rate: requests_hit as f64 / answered.max(1) as f64,
            cached_tokens,
            cached_share: cached_tokens as f64 / prompt_tokens.max(1) as f64,
            answered,
            prompt_tokens,
        })
    }
}

/// Two parts' figures as one (the rates recomputed from the added counts).
impl std::ops::Add for PromptCacheHits {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self::from_counts(
            self.requests_hit + other.requests_hit,
            self.answered + other.answered,
            self.cached_tokens + other.cached_tokens,
            self.prompt_tokens + other.prompt_tokens,
        )
        .unwrap_or(self)
    }
}

/// One copy's share of a strategy's requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyShare {
    pub requests: u64,
    pub ok: u64,
    pub rate_limited: u64,
    pub failed: u64,
    /// Its answered requests per second over the strategy's makespan.
    pub requests_per_s: f64,
}

/// Parts' shares of one copy added (a merge): the counts add; the rate is the caller's
/// to recompute over the merged makespan. Destructured, so that a new field must say
/// how it adds.
impl std::ops::AddAssign<&CopyShare> for CopyShare {
    fn add_assign(&mut self, other: &CopyShare) {
        let CopyShare {
            requests,
            ok,
            rate_limited,
            failed,
            requests_per_s: _,
        } = other;
        self.requests += requests;
        self.ok += ok;
        self.rate_limited += rate_limited;
        self.failed += failed;
    }
}

/// The cache hits among the answered requests; `None` when none reported a cached token.
fn prompt_cache_hits(s: &StrategyResult) -> Option<PromptCacheHits> {
    let c = s.tally.prompt_cache;
    PromptCacheHits::from_counts(c.hits, c.answered, c.cached_tokens, c.prompt_tokens)
}

/// Each copy's share, from the tally; empty without copies.
fn copy_shares(s: &StrategyResult) -> Vec<CopyShare> {
    if s.copies < 2 {
        return Vec::new();
    }
    let makespan = s.makespan().as_secs_f64();
    s.tally
        .by_copy
        .iter()
        .map(|copy| CopyShare {
            requests: copy.requests,
            ok: copy.ok,
            rate_limited: copy.rate_limited,
            failed: copy.failed,
            requests_per_s: if makespan > 0.0 {
                copy.ok as f64 / makespan
            } else {
                0.0
            },
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub rate_limited: u64,
    pub cancelled: u64,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub over_budget: u64,
    /// Failures by error class.
    pub errors: BTreeMap<String, u64>,
}

/// Parts' counts added (a merge): every count is a sum. Destructured, so that a new
/// field must say how it adds.
impl std::ops::AddAssign<&RequestCounts> for RequestCounts {
    fn add_assign(&mut self, other: &RequestCounts) {
        let RequestCounts {
            total,
            ok,
            failed,
            rate_limited,
            cancelled,
            dropped,
            over_budget,
            errors,
        } = other;
        self.total += total;
        self.ok += ok;
        self.failed += failed;
        self.rate_limited += rate_limited;
        self.cancelled += cancelled;
        self.dropped += dropped;
        self.over_budget += over_budget;
        for (class, n) in errors {
            *self.errors.entry(class.clone()).or_default() += n;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Milliseconds from a microsecond histogram; `None` when it holds no samples.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

impl StrategySummary {
    /// The client's CPU time per request, in milliseconds, the lag probe's estimated
    /// share taken out (what the strategy itself cost); `None` where not measured.
    pub fn client_cpu_per_request_ms(&self) -> Option<f64> {
        let own = self.client_cpu_s? - self.probe_cpu_s.unwrap_or(0.0);
        Some(own.max(0.0) * 1e3 / self.requests.total.max(1) as f64)
    }

    /// The percentiles of `metric`; `None` when the strategy has no samples of it.
    pub fn latency(&self, metric: Metric) -> Option<&Percentiles> {
        self.latency_ms.get(metric.name())
    }

    pub fn from_result(s: &StrategyResult) -> StrategySummary {
        let counts = s.counts();
        let latency_ms = Metric::ALL
            .iter()
            .filter_map(|&m| {
                Some((
                    m.name().to_string(),
                    Percentiles::from_histogram(&s.histogram(m))?,
                ))
            })
            .collect();
        StrategySummary {
            label: s.label.clone(),
            kind: s.kind.to_string(),
            limit: s.limit,
            runtime: s.runtime.clone(),
            client: s.client.to_string(),
            http_version: s.http_version.clone(),
            client_cpu_s: s.client_cpu.map(|c| c.as_secs_f64()),
            probe_cpu_s: s
                .runtime_health
                .as_ref()
                .and_then(|h| h.probe_cpu())
                .map(|c| c.as_secs_f64()),
            client_health: ClientHealth::from_result(s),
            interrupted: s.interrupted,
            requests: RequestCounts {
                total: counts.total,
                ok: counts.ok,
                failed: counts.failed,
                rate_limited: counts.rate_limited,
                cancelled: counts.cancelled,
                dropped: counts.dropped,
                over_budget: counts.over_budget,
                errors: counts
                    .by_class
                    .iter()
                    .map(|(class, n)| (class.as_str().to_string(), *n))
                    .collect(),
            },
            makespan_s: s.makespan().as_secs_f64(),
            scheduled_rate_per_s: s.scheduled_rate(),
            achieved_send_rate_per_s: s.achieved_send_rate(),
            requests_per_s: s.requests_per_second(),
            output_tokens: s.output_tokens(),
            output_tokens_per_s: s.output_tokens_per_second(),
            latency_ms,
            mock: s.mock,
            limit_series: s.limit_series.clone(),
            copies: copy_shares(s),
            prompt_cache: prompt_cache_hits(s),
            program: s.program.clone(),
        }
    }
}

/// A runtime whose 1 ms probe wakes more than this late at p99 (in ms) is the
/// bottleneck. It is five ticks of tokio's 1 ms timer: a runtime that keeps up wakes
/// the probe about 1 ms late at the median (the timer fires on millisecond ticks) and
/// stays under it at p99 even with the mock and the client sharing two cores. And a
/// stall this long is already a third of the 15 to 30 ms that real servers leave
/// between tokens, so every token timestamp taken on that runtime may be late by as
/// much.
pub const LAG_P99_LIMIT_MS: f64 = 5.0;

/// Client threads busy this share of their capacity (CPU time over wall time times
/// threads) are saturated: tasks that become ready queue for a thread, and their
/// timestamps wait with them.
pub const SATURATED_UTILISATION: f64 = 0.9;

/// The client's own health while a strategy ran: how late its runtime woke a timer
/// asked for every millisecond, how busy the runtime's threads were, the connections it
/// held, and whether any of it made the client, not the server, the bottleneck.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClientHealth {
    /// How late the probe woke, in ms: one sample per millisecond of the strategy.
    pub lag_ms: Option<Percentiles>,
    /// CPU time of the threads that polled the strategy's tasks over its wall time
    /// times `threads`: 1.0 is every thread busy throughout.
    pub cpu_utilisation: Option<f64>,
    /// Threads the runtime had for its tasks.
    pub threads: usize,
    /// Connections the client used, counted as `connections_from` says.
    pub connections: Option<u64>,
    /// `client_peak` (the most the client's pool held at once) or `mock_accepted`
    /// (connections the embedded mock accepted, for clients that do not say).
    pub connections_from: Option<String>,
    /// True when the lag or the CPU says the client was the bottleneck.
    pub client_bound: bool,
    /// Which figures said so.
    pub reason: Option<String>,
}

impl ClientHealth {
    fn from_result(s: &StrategyResult) -> Option<ClientHealth> {
        let runtime = s.runtime_health.as_ref()?;
        let connections = s.connections();
        let mut health = ClientHealth {
            lag_ms: Percentiles::from_histogram(&runtime.lag),
            cpu_utilisation: runtime.utilisation(),
            threads: runtime.threads,
            connections: connections.map(|(n, _)| n),
            connections_from: connections.map(|(_, from)| from.as_str().to_string()),
            client_bound: false,
            reason: None,
        };
        health.reason = health.bottleneck();
        health.client_bound = health.reason.is_some();
        Some(health)
    }

    /// Why the client, not the server, was the bottleneck, if it was: its runtime's lag
    /// p99 over [`LAG_P99_LIMIT_MS`], or its threads at [`SATURATED_UTILISATION`].
    pub fn bottleneck(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(lag) = self.lag_ms.as_ref().filter(|l| l.p99 > LAG_P99_LIMIT_MS) {
            why.push(format!(
                "runtime lag p99 {:.1} ms, over the {LAG_P99_LIMIT_MS} ms limit",
                lag.p99
            ));
        }
        if let Some(busy) = self.cpu_utilisation.filter(|u| *u >= SATURATED_UTILISATION) {
            let threads = match self.threads {
                1 => "1 thread".to_string(),
                n => format!("{n} threads"),
            };
            why.push(format!(
                "client CPU {:.0} % of {threads}, saturated from {:.0} %",
                busy * 100.0,
                SATURATED_UTILISATION * 100.0
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

impl Summary {
    pub fn from_run(run: &RunResult) -> Summary {
        Summary {
            scenario: run.scenario_name.clone(),
            description: run.description.clone(),
            scenario_file: run.scenario_file.clone(),
            workload_seed: run.workload_seed,
            mock_seed: run.mock_seed,
            tool_version: run.tool_version.to_string(),
            machine: run.machine.clone(),
            started_at: run.started_at.clone(),
            interrupted: run.interrupted,
            complete: run.complete(),
            missing_strategies: run.missing_strategies(),
            stopped: run.stopped.clone(),
            strategies: run
                .strategies
                .iter()
                .map(StrategySummary::from_result)
                .collect(),
            skipped: run.skipped.clone(),
            capacity: run.capacity.clone(),
            shard: run.shard.clone(),
            start: run.start.clone(),
            merged: None,
        }
    }

    /// Reads `summary.json` from a results folder.
    pub fn load(dir: &Path) -> anyhow::Result<Summary> {
        if !dir.join(FILE).exists()
            && let Some(pid) = running_pid(dir)
        {
            anyhow::bail!(
                "{}: no strategy has finished yet, nothing to read: {}",
                dir.display(),
                marker_state(pid)
            );
        }
        serde_json::from_str(&read_results_file(dir, FILE)?)
            .with_context(|| format!("{}: not an llmbench summary", dir.join(FILE).display()))
    }
}

/// The text of the [`RUNNING`] marker for this process.
pub fn running_marker() -> String {
    format!("pid {}\n", std::process::id())
}

/// The process id in the [`RUNNING`] marker of `dir`, if the marker is there (`0` when
/// it cannot be read).
fn running_pid(dir: &Path) -> Option<u32> {
    let path = dir.join(RUNNING);
    if !path.exists() {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
            .unwrap_or(0),
    )
}

/// Whether the process `pid` is alive on this machine (a zombie counts as alive until
/// reaped; an unreadable marker, `0`, as gone).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let status = unsafe { libc::kill(pid, 0) };
        status == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// What a [`RUNNING`] marker left by process `pid` says about its run.
fn marker_state(pid: u32) -> String {
    if process_alive(pid) && pid != std::process::id() {
        format!("the run is still in progress (process {pid})")
    } else {
        format!(
            "the run was killed or crashed before it ended (it left {RUNNING}, and process {pid} is gone)"
        )
    }
}

/// Why a saved run does not cover everything it set out to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompleteness {
    /// What happened to the run, as a clause: "the run was interrupted".
    pub reason: String,
    /// The labels of the strategies that never ran or did not finish.
    pub missing: Vec<String>,
}

impl std::fmt::Display for Incompleteness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; ", self.reason)?;
        match self.missing.as_slice() {
            [] => write!(f, "no strategy is missing"),
            missing => write!(f, "missing strategies: {}", missing.join(", ")),
        }
    }
}

/// Whether the results folder `dir`, whose summary is `summary`, is incomplete, and
/// why: its run is still going or died (a [`RUNNING`] marker), or its summary says
/// it is not `complete`. `None` for a complete run.
pub fn incompleteness(dir: &Path, summary: &Summary) -> Option<Incompleteness> {
    let reason = if let Some(pid) = running_pid(dir) {
        marker_state(pid)
    } else if summary.complete && !summary.interrupted {
        return None;
    } else if summary.interrupted {
        "the run was interrupted".to_string()
    } else if let Some(merged) = summary.merged.as_ref().filter(|m| !m.missing.is_empty()) {
        merged.missing_reason()
    } else if let Some(why) = &summary.stopped {
        format!("the run stopped early: {why}")
    } else {
        "the run stopped before every strategy finished".to_string()
    };
    Some(Incompleteness {
        reason,
        missing: summary.missing_strategies.clone(),
    })
}

/// Reads the file `name` of the results folder `dir`, saying so when `dir` does not look
/// like one.
pub fn read_results_file(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is {} an llmbench results folder?",
            path.display(),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counts_add_every_count_and_every_error_class() {
        let counts = |n: u64, errors: &[(&str, u64)]| RequestCounts {
            total: n,
            ok: 2 * n,
            failed: 3 * n,
            rate_limited: 4 * n,
            cancelled: 5 * n,
            dropped: 6 * n,
            over_budget: 7 * n,
            errors: errors.iter().map(|&(c, n)| (c.to_string(), n)).collect(),
        };
        let mut sum = RequestCounts::default();
        sum += &counts(1, &[("http_429", 1), ("timeout", 2)]);
        sum += &counts(10, &[("http_429", 10), ("http_500", 5)]);
        let expected = counts(11, &[("http_429", 11), ("http_500", 5), ("timeout", 2)]);
        assert_eq!(sum, expected);
    }

    /// A summary as written by a version before `complete` and `missing_strategies`.
    fn older(interrupted: bool) -> Summary {
        let json = serde_json::json!({
            "scenario": "s", "description": "", "scenario_file": "s.toml",
            "workload_seed": 1, "mock_seed": null, "tool_version": "0.1.0",
            "machine": {"cpu_model": "x", "cores": 2, "os": "linux", "kernel": "6"},
            "started_at": "2026-01-01T00:00:00Z", "interrupted": interrupted,
            "strategies": []
        });
        serde_json::from_value(json).unwrap()
    }

    fn health(lag_p99_ms: f64, utilisation: f64) -> ClientHealth {
        let lag = serde_json::json!({"count": 1000, "min": 0.1, "mean": 1.0, "p50": 1.0,
            "p90": 1.5, "p95": 2.0, "p99": lag_p99_ms, "p999": lag_p99_ms, "max": lag_p99_ms});
        ClientHealth {
            lag_ms: Some(serde_json::from_value(lag).unwrap()),
            cpu_utilisation: Some(utilisation),
            threads: 1,
            ..ClientHealth::default()
        }
    }

    #[test]
    fn the_client_is_the_bottleneck_past_either_threshold_and_says_which() {
        assert_eq!(health(LAG_P99_LIMIT_MS, 0.89).bottleneck(), None);
        assert_eq!(
            health(5.04, 0.2).bottleneck().unwrap(),
            "runtime lag p99 5.0 ms, over the 5 ms limit"
        );
        assert_eq!(
            health(1.0, SATURATED_UTILISATION).bottleneck().unwrap(),
            "client CPU 90 % of 1 thread, saturated from 90 %"
        );
        let both = health(26.0, 0.97).bottleneck().unwrap();
        assert!(
            both.contains("26.0 ms") && both.contains("97 % of 1 thread"),
            "{both}"
        );
        // Summaries written before the client's health was measured still load.
        let older: ClientHealth = serde_json::from_str("{}").unwrap();
        assert_eq!((older.bottleneck(), older.lag_ms), (None, None));
    }

    #[test]
    fn an_older_summary_loads_as_complete_unless_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let summary = older(false);
        assert!(summary.complete && summary.missing_strategies.is_empty());
        assert_eq!(incompleteness(dir.path(), &summary), None);
        let why = incompleteness(dir.path(), &older(true)).unwrap();
        assert_eq!(
            why.to_string(),
            "the run was interrupted; no strategy is missing"
        );
    }

    #[test]
    fn the_running_marker_tells_a_live_run_from_a_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut summary = older(false);
        summary.complete = false;
        summary.missing_strategies = vec!["serial".into()];
        // Process 1 is always alive.
        std::fs::write(dir.path().join(RUNNING), "pid 1\n").unwrap();
        let why = incompleteness(dir.path(), &summary).unwrap();
        assert_eq!(
            why.to_string(),
            "the run is still in progress (process 1); missing strategies: serial"
        );
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        std::fs::write(dir.path().join(RUNNING), format!("pid {}\n", gone.id())).unwrap();
        let why = incompleteness(dir.path(), &summary).unwrap();
        assert!(
            why.reason.starts_with("the run was killed or crashed"),
            "{why}"
        );
        assert!(
            Summary::load(dir.path())
                .unwrap_err()
                .to_string()
                .contains("no strategy has finished yet")
        );
    }
}
