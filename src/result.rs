//! The measured outcome of a run: the one type every exporter reads (the way hyperfine's
//! exporters all read `BenchmarkResult`). Every figure is derived from the recorder's
//! tally of histograms and counts: no per-request record is held.
//!
//! Owns the in-memory results; how they are saved is the `summary` module's. It must not
//! import the mock server (its counters arrive as [`MockReport`], converted by the
//! runner) nor anything of the report side (`summary`, `report`, `compare`, `slo`).

use crate::machine::Machine;
use crate::metric::Metric;
use crate::recorder::timeline::{LimitSeries, Ticks, TimelineBucket};
use crate::recorder::{ErrorClass, Outcome, Recording, Tally};
use crate::runtime::RuntimeHealth;
use crate::scenario::StrategyKind;
use crate::strategy::{ProgramReport, ProgramRun};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct RunResult {
    pub scenario_name: String,
    pub description: String,
    /// The scenario file as given on the command line.
    pub scenario_file: String,
    pub workload_seed: u64,
    pub mock_seed: Option<u64>,
    pub tool_version: &'static str,
    pub machine: Machine,
    /// UTC start of the run, RFC 3339.
    pub started_at: String,
    /// True when the run was stopped before every strategy finished.
    pub interrupted: bool,
    /// Why the run stopped sending early (a `[budget]` cap), if it did.
    pub stopped: Option<String>,
    pub strategies: Vec<StrategyResult>,
    /// Strategies whose runtime could not start here, in run order.
    pub skipped: Vec<SkippedStrategy>,
    /// The labels of every strategy the run set out to run, in order (after any
    /// selection on the command line): what [`RunResult::missing_strategies`] and
    /// [`RunResult::complete`] are measured against.
    pub planned: Vec<String>,
    /// True once the run has saved its last strategy and stopped on its own (not
    /// interrupted, no error): until then the results are partial.
    pub finished: bool,
    /// A capacity search's answer, when the run was one (its probes are the strategies).
    pub capacity: Option<crate::search::CapacityAnswer>,
    /// Which part of a sharded run this is (`--shard`).
    pub shard: Option<crate::shard::ShardRecord>,
    /// How the run started against a common start (`--start-at`).
    pub start: Option<crate::shard::StartRecord>,
}

impl RunResult {
    /// The planned strategies that never ran or did not finish (an interrupted
    /// strategy's partial results are kept, and it is still missing), in plan order. A
    /// strategy skipped because its runtime is unavailable is reported under `skipped`
    /// instead: it was not going to run here.
    pub fn missing_strategies(&self) -> Vec<String> {
        let done = |label: &str| {
            self.strategies
                .iter()
                .any(|s| s.label == label && !s.interrupted)
                || self.skipped.iter().any(|s| s.label == label)
        };
        self.planned
            .iter()
            .filter(|label| !done(label))
            .cloned()
            .collect()
    }

    /// Whether the results cover the whole run: it finished, was not interrupted, no
    /// planned strategy is missing, and not every one was skipped.
    pub fn complete(&self) -> bool {
        self.finished
            && !self.interrupted
            && self.missing_strategies().is_empty()
            && !self.every_strategy_skipped()
    }

    /// True when every strategy was skipped (an external program or io_uring missing
    /// here): the run measured nothing, and must not pass for a result.
    pub fn every_strategy_skipped(&self) -> bool {
        self.strategies.is_empty() && !self.skipped.is_empty()
    }

    /// Why the run measured nothing, when not one request of any strategy succeeded
    /// although some were sent: failures by class and the first error's message. Such
    /// a run has no latency to report; its exit status must say so (a dead endpoint is
    /// not a benchmark result).
    pub fn nothing_answered(&self) -> Option<String> {
        let mut by_class: BTreeMap<ErrorClass, u64> = BTreeMap::new();
        for s in &self.strategies {
            let counts = s.counts();
            if counts.ok > 0 {
                return None;
            }
            for (class, n) in counts.by_class {
                *by_class.entry(class).or_default() += n;
            }
        }
        let first = self
            .strategies
            .iter()
            .find_map(|s| s.tally.first_error.as_ref())
            .map(|(_, message)| message)?;
        let classes: Vec<String> = by_class
            .iter()
            .map(|(class, n)| format!("{} {n}", class.as_str()))
            .collect();
        Some(format!(
            "no request succeeded ({}); the first error: {first}",
            classes.join(", ")
        ))
    }
}

/// A strategy that was not run, and why: its runtime is not available on this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkippedStrategy {
    pub label: String,
    pub runtime: String,
    pub reason: String,
}

/// The mock server's own account of one strategy, saved beside what the client
/// measured. Its own type, so results do not depend on the mock's internals; the runner
/// converts the mock's counters into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)] // results saved by older versions lack the newer counters
pub struct MockReport {
    pub requests: u64,
    pub admitted: u64,
    pub rate_limited: u64,
    pub invalid: u64,
    /// Requests given an injected fault.
    pub faults: u64,
    /// Requests refused because the capacity model's queue was full.
    pub queue_full: u64,
    /// How late the mock sent streamed tokens against their schedule, in microseconds
    /// (median, 99th percentile, maximum): its own pacing error, apart from the client's.
    pub token_lateness_us: [u64; 3],
    pub output_tokens_sent: u64,
    /// TCP connections accepted and served: how well the client reuses its connections.
    pub connections: u64,
    /// TCP connections the mock closed at once because its `max_connections` were open.
    pub connections_refused: u64,
}

/// Parts' reports added (a merge): the counters are sums, and the token lateness is
/// the worst part's, since percentiles do not add. Destructured, so that a new field
/// must say how it adds.
impl std::ops::AddAssign for MockReport {
    fn add_assign(&mut self, other: MockReport) {
        let MockReport {
            requests,
            admitted,
            rate_limited,
            invalid,
            faults,
            queue_full,
            token_lateness_us,
            output_tokens_sent,
            connections,
            connections_refused,
        } = other;
        self.requests += requests;
        self.admitted += admitted;
        self.rate_limited += rate_limited;
        self.invalid += invalid;
        self.faults += faults;
        self.queue_full += queue_full;
        for (worst, part) in self.token_lateness_us.iter_mut().zip(token_lateness_us) {
            *worst = (*worst).max(part);
        }
        self.output_tokens_sent += output_tokens_sent;
        self.connections += connections;
        self.connections_refused += connections_refused;
    }
}

pub struct StrategyResult {
    pub label: String,
    pub kind: StrategyKind,
    pub limit: Option<u64>,
    /// What its records add up to (histograms, counts, extremes).
    pub tally: Tally,
    /// Its timeline, in fine ticks.
    pub ticks: Ticks,
    /// The mock's own counts for this strategy, when the target is the mock.
    pub mock: Option<MockReport>,
    /// True when an interrupt cut this strategy short.
    pub interrupted: bool,
    /// The runtime the strategy ran on, with its thread count.
    pub runtime: String,
    /// The HTTP library that sent the requests.
    pub client: &'static str,
    /// CPU time the load generator used while the strategy ran (the mock's excluded).
    pub client_cpu: Option<Duration>,
    /// What the probe on the strategy's runtime measured: its lag and its threads' CPU.
    pub runtime_health: Option<RuntimeHealth>,
    /// The most connections the client's own pool held at once, where the HTTP library
    /// says (hyper; reqwest does not).
    pub pool_peak_connections: Option<u64>,
    /// The HTTP versions the responses came in (`HTTP/1.1`, `HTTP/2`, or both joined
    /// by ` + `); empty when no response came.
    pub http_version: String,
    /// Copies of the strategy that ran side by side, item `i` sent by copy `i mod
    /// copies` (1 without `copies`).
    pub copies: usize,
    /// The strategy's limit over time (an adaptive limit, a limiter's rate; with
    /// copies, the sum of theirs).
    pub limit_series: Option<LimitSeries>,
    /// An `external` strategy's account of its program.
    pub program: Option<ProgramReport>,
}

/// Where a strategy's count of connections comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionSource {
    /// The most the client's own pool held at once.
    ClientPeak,
    /// TCP connections the embedded mock accepted during the strategy.
    MockAccepted,
}

impl ConnectionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionSource::ClientPeak => "client_peak",
            ConnectionSource::MockAccepted => "mock_accepted",
        }
    }
}

/// Request counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub ok: u64,
    /// Every failed request, 429s included.
    pub failed: u64,
    pub rate_limited: u64,
    pub cancelled: u64,
    /// Arrivals never sent because the strategy's queue was full.
    pub dropped: u64,
    /// Items never sent because the run's budget was spent.
    pub over_budget: u64,
    pub by_class: BTreeMap<ErrorClass, u64>,
}

impl StrategyResult {
    pub fn new(
        label: String,
        kind: StrategyKind,
        limit: Option<u64>,
        recording: Recording,
        mock: Option<MockReport>,
        interrupted: bool,
    ) -> StrategyResult {
        StrategyResult {
            label,
            kind,
            limit,
            tally: recording.tally,
            ticks: recording.ticks,
            limit_series: recording.limit,
            mock,
            interrupted,
            runtime: String::new(),
            client: "",
            client_cpu: None,
            runtime_health: None,
            pool_peak_connections: None,
            http_version: String::new(),
            copies: 1,
            program: None,
        }
    }

    /// Takes an external program's run as the client's: its CPU time from its rusage,
    /// its event loop's lag as the runtime's (one thread), and its account.
    pub fn with_program(&mut self, run: ProgramRun) {
        self.client_cpu = run.cpu;
        self.runtime = "external program".into();
        self.client = "its own";
        self.pool_peak_connections = None;
        self.runtime_health = Some(RuntimeHealth {
            lag: run.lag,
            wall: run.wall,
            cpu: run.cpu,
            threads: 1,
            probe_idle_cost: None,
        });
        self.program = Some(run.report);
    }

    /// The connections the client used: its pool's peak where the library says, else
    /// what the embedded mock accepted; `None` for a live target that reqwest served.
    pub fn connections(&self) -> Option<(u64, ConnectionSource)> {
        match (self.pool_peak_connections, self.mock) {
            (Some(peak), _) => Some((peak, ConnectionSource::ClientPeak)),
            (None, Some(mock)) => Some((mock.connections, ConnectionSource::MockAccepted)),
            (None, None) => None,
        }
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            total: self.tally.records(),
            ..Counts::default()
        };
        for (&outcome, &n) in &self.tally.outcomes {
            match outcome {
                Outcome::Ok => counts.ok += n,
                Outcome::Cancelled => counts.cancelled += n,
                Outcome::Dropped => counts.dropped += n,
                Outcome::OverBudget => counts.over_budget += n,
                Outcome::Failed(class) => {
                    counts.failed += n;
                    *counts.by_class.entry(class).or_default() += n;
                }
            }
        }
        counts.rate_limited = counts
            .by_class
            .get(&ErrorClass::RateLimited)
            .copied()
            .unwrap_or(0);
        counts
    }

    /// Strategy start → the last response's end.
    pub fn makespan(&self) -> Duration {
        self.tally.last_end.unwrap_or_default()
    }

    /// Output tokens of successful requests.
    pub fn output_tokens(&self) -> u64 {
        self.tally.output_tokens
    }

    /// Successful requests per second of makespan.
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.counts().ok as f64, self.makespan())
    }

    pub fn output_tokens_per_second(&self) -> f64 {
        per_second(self.output_tokens() as f64, self.makespan())
    }

    /// The latency histogram of `metric`, over successful requests: a failure's latency
    /// (a fast 429) would make a refusing server look fast.
    pub fn histogram(&self, metric: Metric) -> Histogram<u64> {
        let t = &self.tally;
        match metric {
            Metric::E2e => &t.e2e,
            Metric::E2eCorrected => &t.e2e_corrected,
            Metric::Ttft => &t.ttft,
            Metric::TtftCorrected => &t.ttft_corrected,
            Metric::Tpot => &t.tpot,
            Metric::DispatchDelay => &t.dispatch_delay,
            Metric::Itl => &t.itl,
        }
        .clone()
    }

    /// Arrivals offered per second: items / the schedule's span (`None` for a batch,
    /// whose span is zero).
    pub fn scheduled_rate(&self) -> Option<f64> {
        let span = self.tally.last_intended?;
        (!span.is_zero()).then(|| (self.tally.records() - 1) as f64 / span.as_secs_f64())
    }

    /// Requests actually sent per second, measured the same way as the scheduled rate
    /// (between the first and last send), so the two compare directly.
    pub fn achieved_send_rate(&self) -> Option<f64> {
        let span = self.tally.last_sent?.saturating_sub(self.tally.first_sent?);
        (!span.is_zero()).then(|| (self.tally.sends - 1) as f64 / span.as_secs_f64())
    }

    /// Per-second timeline.
    pub fn timeline(&self) -> Vec<TimelineBucket> {
        self.ticks.buckets(Duration::from_secs(1))
    }
}

/// `count` over `span`, 0 for an empty span.
pub fn per_second(count: f64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count / span.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_reports_add_their_counters_and_keep_the_worst_lateness() {
        let report = |n: u64, lateness: [u64; 3]| MockReport {
            requests: n,
            admitted: 2 * n,
            rate_limited: 3 * n,
            invalid: 4 * n,
            faults: 5 * n,
            queue_full: 6 * n,
            token_lateness_us: lateness,
            output_tokens_sent: 7 * n,
            connections: 8 * n,
            connections_refused: 9 * n,
        };
        let mut sum = report(1, [10, 500, 900]);
        sum += report(10, [20, 300, 1000]);
        assert_eq!(sum, report(11, [20, 500, 1000]));
    }
}
