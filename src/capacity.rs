//! `llmbench capacity`: runs a capacity search. Each probe is a normal strategy run (the
//! scenario's one strategy at a rate, or with a limit) saved into one results folder as
//! it ends; its verdict against `[slo]` (dropped and failed requests counted as errors)
//! goes to the search's decisions ([`crate::search`]), and the answer so far is saved
//! with every probe, so an interrupted search leaves a partial answer beside its probes.
//!
//! Owns turning a point into a probe (its work items and strategy) and a probe's results
//! into a verdict; the decisions are the search's, the running the runner's.

use crate::result::StrategyResult;
use crate::runner::{RunOptions, RunOutcome, StepwiseRun};
use crate::scenario::{
    ArrivalConfig, Concurrency, LimitRule, Rate, RequestCount, Scenario, SearchConfig,
    SearchDimension, SloConfig, StrategyConfig, WorkloadConfig,
};
use crate::search::{ObjectiveMargin, ProbeVerdict, Search, SearchStatus, SearchStep};
use crate::slo::Bound;
use crate::summary::StrategySummary;
use crate::workload::WorkItems;
use std::fmt;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// A search ready to run: checked against the scenario before any traffic.
pub struct Probes<'a> {
    scenario: &'a Scenario,
    search: &'a SearchConfig,
    strategy: &'a StrategyConfig,
    /// Prompts, and a trace whose first `requests` rows every probe replays at their
    /// own times (a concurrency search).
    files: crate::workload::WorkloadFiles,
}

impl<'a> Probes<'a> {
    /// The search of `scenario` with its one strategy, or the one labelled `label`;
    /// the error says what to change.
    pub fn new(scenario: &'a Scenario, label: Option<&str>) -> Result<Probes<'a>, String> {
        let search = scenario.search().ok_or(
            "no [search] section: add one with `low`, `high` and `requests` or `duration_s` (see the README's capacity section)",
        )?;
        if scenario.slo.is_empty() {
            return Err("a capacity search needs objectives to meet: set [slo] (e.g. ttft_p99_ms, max_error_rate)".into());
        }
        let labels: Vec<String> = scenario.strategies().map(|s| s.label()).collect();
        let strategy = match label {
            Some(label) => scenario.strategies().find(|s| s.label() == label).ok_or_else(|| {
                format!(
                    "--strategy: no strategy is labelled \"{label}\"; the scenario's strategies are: {}",
                    labels.join(", ")
                )
            })?,
            None if labels.len() == 1 => scenario.strategies().next().expect("one strategy"),
            None => {
                return Err(format!(
                    "a search runs one strategy: pick one with --strategy ({})",
                    labels.join(", ")
                ));
            }
        };
        let workload = scenario.workload();
        match search.dimension {
            SearchDimension::Concurrency if strategy.kind.limit_rule() == LimitRule::Refused => {
                return Err(format!(
                    "search.dimension = \"concurrency\" varies the strategy's `limit`, which {} has none of: use semaphore, joinset, rate or adaptive",
                    strategy.kind
                ));
            }
            SearchDimension::Rate
                if !matches!(
                    workload.arrival,
                    ArrivalConfig::Batch
                        | ArrivalConfig::Constant { .. }
                        | ArrivalConfig::Poisson { .. }
                        | ArrivalConfig::Gamma { .. }
                ) =>
            {
                return Err("search.dimension = \"rate\" sets the arrival rate: workload.arrival must be constant, poisson or gamma (or left out for constant)".into());
            }
            _ => {}
        }
        let files = crate::workload::WorkloadFiles::read(scenario).map_err(|e| e.to_string())?;
        Ok(Probes {
            scenario,
            search,
            strategy,
            files,
        })
    }

    /// The strategy and work items of a probe at `point`, labelled by its number.
    fn probe(&self, number: usize, point: f64) -> (StrategyConfig, WorkItems) {
        let mut workload: WorkloadConfig = self.scenario.workload().clone();
        match self.search.dimension {
            SearchDimension::Rate => {
                let rate = Rate(point);
                workload.arrival = match workload.arrival {
                    ArrivalConfig::Poisson { .. } => ArrivalConfig::Poisson { rate },
                    ArrivalConfig::Gamma { burstiness, .. } => {
                        ArrivalConfig::Gamma { rate, burstiness }
                    }
                    _ => ArrivalConfig::Constant { rate },
                };
                workload.duration_s = self.search.duration_s;
            }
            SearchDimension::Concurrency => {}
        }
        let mut strategy = self.strategy_at(point);
        workload.requests = Some(RequestCount(self.search.requests_at(point)));
        strategy.custom_label = Some(crate::scenario::Name(format!(
            "p{number:02}-{}-{}",
            self.search.dimension.as_str(),
            point_label(point)
        )));
        let items =
            crate::workload::generate(&workload, self.files.trace.clone(), &self.files.prompts);
        (strategy, items)
    }

    /// What to set aside before the first probe: what the probe at the highest point
    /// may take ([`crate::plan::Footprint`]). A search's verdicts are measurements too,
    /// and its first probe high up would otherwise grow the heap and the descriptor
    /// table while it is judged.
    pub fn footprint(&self) -> crate::plan::Footprint {
        let (strategy, requests) = self.highest_probe();
        crate::plan::Footprint::of(self.scenario, std::iter::once(&strategy), requests)
    }

    /// The strategy and request count of a probe at the search's highest point.
    fn highest_probe(&self) -> (StrategyConfig, u64) {
        let high = self.search.high.0;
        (self.strategy_at(high), self.search.requests_at(high))
    }

    /// The strategy at `point`: with that `limit` in a concurrency search, as it is in
    /// a rate search (the arrivals change there).
    fn strategy_at(&self, point: f64) -> StrategyConfig {
        match self.search.dimension {
            SearchDimension::Concurrency => self.strategy.with_limit(Concurrency(point as u64)),
            SearchDimension::Rate => self.strategy.clone(),
        }
    }

    /// What the search may spend at most, before it starts.
    pub fn plan(&self) -> SearchPlan {
        let probes = Search::max_probes(self.search) as u64;
        let per_probe = self.search.requests_at(self.search.high.0);
        let workload = self.scenario.workload();
        let requests = probes.saturating_mul(per_probe);
        let mean = |d: crate::scenario::TokenDistribution| d.0.typical();
        let (prompt, output) = (mean(workload.prompt_tokens()), mean(workload.max_tokens()));
        SearchPlan {
            target: self.scenario.target.describe(),
            loopback: self.scenario.target.is_loopback(),
            points: Search::max_points(self.search),
            probes,
            requests,
            max_cost: self.scenario.target.price().map(|p| {
                requests as f64 * (prompt * p.input_per_million.0 + output * p.output_per_million.0)
                    / 1e6
            }),
            budget: !self.scenario.budget.is_empty(),
        }
    }
}

/// "12.5", "40": a point as a label writes it.
fn point_label(point: f64) -> String {
    let text = format!("{point:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The most a search may spend, shown before it starts.
pub struct SearchPlan {
    pub target: String,
    pub loopback: bool,
    pub points: usize,
    pub probes: u64,
    pub requests: u64,
    /// Dollars at `[target.price]`, with every request at its typical prompt and
    /// `max_tokens`.
    pub max_cost: Option<f64>,
    /// Whether `[budget]` caps it.
    pub budget: bool,
}

impl fmt::Display for SearchPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::plan::write_target(f, &self.target, self.loopback)?;
        writeln!(
            f,
            "search:         at most {} points, {} probes (repeats included)",
            self.points, self.probes
        )?;
        writeln!(
            f,
            "requests:       at most {} (each probe at most as many as one at the highest point)",
            self.requests
        )?;
        crate::plan::write_cost(f, self.max_cost)?;
        match self.budget {
            true => write!(f, "\nbudget:         [budget] stops the search when spent"),
            false => write!(
                f,
                "\nbudget:         none ([budget] caps requests, tokens or cost)"
            ),
        }
    }
}

/// A probe's verdict against the objectives, from its results; its goodput is the
/// requests its recorder judged good ([`crate::recorder::RequestRecord::meets`]).
pub fn verdict(slo: &SloConfig, point: f64, result: &StrategyResult) -> ProbeVerdict {
    let mut summary = StrategySummary::from_result(result);
    // An arrival dropped at this load is a request the endpoint did not serve.
    summary.requests.failed += summary.requests.dropped;
    let objectives = slo
        .evaluate(&summary)
        .into_iter()
        .map(|check| {
            let margin = match (check.actual, check.bound) {
                (None, _) => -1.0,
                (Some(actual), Bound::AtLeast) => (actual - check.limit) / check.limit,
                // An error rate of 0 allows none: any error is a whole limit over.
                (Some(actual), Bound::AtMost) if check.limit == 0.0 => -actual.signum(),
                (Some(actual), Bound::AtMost) => (check.limit - actual) / check.limit,
            };
            ObjectiveMargin {
                objective: check.objective,
                limit: check.limit,
                actual: check.actual,
                margin,
            }
        })
        .collect();
    ProbeVerdict {
        label: result.label.clone(),
        point,
        objectives,
        throughput_rps: summary.requests_per_s,
        goodput_rps: crate::result::per_second(result.tally.good as f64, result.makespan()),
        interrupted: result.interrupted,
    }
}

/// Runs the search and saves every probe and the answer into one results folder.
pub async fn run(
    probes: &Probes<'_>,
    scenario_file: &Path,
    options: &RunOptions,
    cancel: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let mut session = StepwiseRun::start(probes.scenario, scenario_file, options, cancel)?;
    let mut search = Search::new(probes.search.clone());
    let status = loop {
        if let Some(reason) = session.stopped() {
            break SearchStatus::Partial { reason };
        }
        let point = match search.next() {
            SearchStep::Probe(point) => point,
            SearchStep::Done(status) => break status,
        };
        let (strategy, items) = probes.probe(search.probes().len() + 1, point);
        let Some(result) = session.strategy(&strategy, items).await? else {
            session.save()?;
            anyhow::bail!(
                "{} cannot run here: its runtime is unavailable",
                strategy.label()
            );
        };
        let mut verdict = verdict(&probes.scenario.slo, point, result);
        // A probe cut short by the budget saw less than its load: it decides nothing.
        verdict.interrupted |= session.stopped().is_some();
        search.record(verdict);
        report_progress(&search, options.quiet);
        // Saved once per probe, the probe and the answer so far together.
        session.result.capacity = Some(search.answer(SearchStatus::Partial {
            reason: "the search was still running".into(),
        }));
        session.save()?;
    };
    session.result.capacity = Some(search.answer(status));
    session.finish()
}

/// One line per probe: which, its verdict, the worst objective, the bracket so far.
fn report_progress(search: &Search, quiet: bool) {
    let (Some(verdict), false) = (search.probes().last(), quiet) else {
        return;
    };
    let answer = search.answer(SearchStatus::Found);
    let worst = verdict
        .objectives
        .iter()
        .min_by(|a, b| a.margin.total_cmp(&b.margin))
        .map(|o| {
            let actual = o.actual.map_or("no sample".into(), |a| format!("{a:.3}"));
            format!("{} at {actual}", o.objective)
        })
        .unwrap_or_default();
    let end = |v: Option<f64>| v.map_or("–".into(), point_label);
    eprintln!(
        "probe {}: {} {}: {} (worst: {worst}); goodput {:.2} req/s; bracket [{}, {}]",
        search.probes().len(),
        point_label(verdict.point),
        answer.unit,
        verdict.outcome(),
        verdict.goodput_rps,
        end(answer.highest_passing),
        end(answer.lowest_failing),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A concurrency search over a trace replays its first `requests` rows in every
    /// probe (it drew nothing from a trace before: every probe was empty).
    #[test]
    fn a_concurrency_search_replays_the_trace_in_every_probe() {
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (0..5)
            .map(|i| {
                format!(
                    "{{\"timestamp\": {i}.5, \"input_tokens\": {}, \"output_tokens\": 2}}\n",
                    10 + i
                )
            })
            .collect();
        std::fs::write(dir.path().join("t.jsonl"), rows).unwrap();
        let src = r#"
name = "replayed-search"
[target]
kind = "mock"
[workload]
arrival = { kind = "trace", path = "t.jsonl" }
[search]
dimension = "concurrency"
low = 1
high = 4
requests = 3
[slo]
max_error_rate = 0.01
[[strategy]]
kind = "semaphore"
limit = 2
"#;
        let scenario = Scenario::parse_in(src, "test", dir.path()).unwrap();
        let probes = Probes::new(&scenario, None).unwrap();
        for point in [1.0, 4.0] {
            let (strategy, items) = probes.probe(0, point);
            assert_eq!(strategy.limit().map(|l| l.0), Some(point as u64));
            let prompts: Vec<u32> = items.iter().map(|i| i.prompt_tokens).collect();
            assert_eq!(prompts, [10, 11, 12]);
        }
    }

    /// The heap is warmed for the probe at the highest point: its limit over HTTP/1.1
    /// to a live target (48 KiB a request in flight), a rate search's every request.
    #[test]
    fn a_search_warms_the_heap_its_highest_probe_may_hold() {
        let search = |dimension: &str, high: u32, strategy: &str| {
            let src = format!(
                "name = \"s\"\n[target]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n[workload]\nrequests = 10\n[search]\ndimension = \"{dimension}\"\nlow = 1\nhigh = {high}\nrequests = 1000\n[slo]\nmax_error_rate = 0.01\n[[strategy]]\n{strategy}\n"
            );
            let scenario = Scenario::parse(&src, "s.toml").unwrap();
            Probes::new(&scenario, None).unwrap().footprint().heap >> 20
        };
        assert_eq!(
            search("concurrency", 200, "kind = \"joinset\"\nlimit = 1"),
            16 + 9
        );
        assert_eq!(search("rate", 50, "kind = \"join_all\""), 16 + 46);
    }
}
