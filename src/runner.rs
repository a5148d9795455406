//! Running a scenario: start the target, then for each strategy reset it, dispatch the
//! shared work items, and save what was measured.
//!
//! The top of the pipeline, and the only module that knows every stage: it starts the
//! mock when the target is the embedded one, and turns what the mock reports into the
//! results' own type.

use crate::budget::Budget;
use crate::client::{Carrier, Client, Endpoint};
use crate::machine::Machine;
use crate::mock::{MockServer, MockStats};
use crate::monitor::Monitor;
use crate::recorder::Recorder;
use crate::report::{ResultsDir, RowWriter};
use crate::result::{MockReport, RunResult, SkippedStrategy, StrategyResult};
use crate::runtime;
use crate::scenario::{RuntimeKind, Scenario, StrategyConfig, StrategyKind, Target};
use crate::shard::{ShardRecord, StartAt};
use crate::strategy::{Arrivals, DispatchPolicy, Dispatcher, ProgramContext};
use crate::workload::WorkItems;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct RunOptions {
    /// Folder the run's own results folder is created in.
    pub output: PathBuf,
    /// No progress display.
    pub quiet: bool,
    /// Draw charts and write the reports after the run (`llmbench report` can later).
    pub report: bool,
    /// Which part of a sharded run this is; the items are already this part's.
    pub shard: Option<ShardRecord>,
    /// The instant to anchor the (first) strategy's schedule at, waited for first.
    pub start_at: Option<StartAt>,
}

pub struct RunOutcome {
    pub result: RunResult,
    pub dir: PathBuf,
    /// The charts and reports drawn from the saved results, unless turned off.
    pub report: Option<crate::report::Rendered>,
}

/// The server requests go to, for the length of a run: the embedded mock, started
/// here, or a live endpoint.
struct TargetHandle {
    mock: Option<MockServer>,
    endpoint: Endpoint,
}

impl TargetHandle {
    fn start(scenario: &Scenario) -> anyhow::Result<TargetHandle> {
        if let Target::Mock { model, api } = &scenario.target {
            let mock = MockServer::start_local(scenario.mock.clone(), scenario.mock_seed())
                .map_err(|e| anyhow::anyhow!("cannot start the embedded mock server: {e}"))?;
            let endpoint = Endpoint::mock(mock.base_url(), model, *api);
            return Ok(TargetHandle {
                mock: Some(mock),
                endpoint,
            });
        }
        let endpoint =
            Endpoint::live(&scenario.target, scenario.folder()).map_err(anyhow::Error::msg)?;
        Ok(TargetHandle {
            mock: None,
            endpoint,
        })
    }

    /// Brings the target back to its starting state before a strategy, where it can be,
    /// with `zero` (the strategy's start) as its clock's origin.
    fn reset(&self, zero: Instant) {
        if let Some(mock) = &self.mock {
            mock.reset_at(zero);
        }
    }

    /// The mock's counters since the last reset, as the results record them.
    fn mock_report(&self) -> Option<MockReport> {
        self.mock.as_ref().map(|mock| mock_report(mock.stats()))
    }
}

fn mock_report(stats: MockStats) -> MockReport {
    let MockStats {
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
    } = stats;
    MockReport {
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
    }
}

/// Runs every strategy of `scenario` and writes the results under `options.output`.
/// `cancel` interrupts the run (Ctrl-C): in-flight requests are recorded as cancelled,
/// remaining strategies are skipped, and what was measured is saved.
///
/// However the run ends (finished, interrupted, stopped by its budget or by an error),
/// its last summary says whether it is complete and which strategies are missing, and
/// the folder's `.running` marker is removed; only a kill leaves the marker behind.
pub async fn run(
    scenario: &Scenario,
    items: WorkItems,
    scenario_file: &Path,
    options: &RunOptions,
    cancel: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut dir = ResultsDir::create(
        &options.output,
        &scenario.name.0,
        &started_at,
        scenario_file,
    )?;
    let mut result = new_result(scenario, scenario_file, started_at);
    result.planned = scenario.strategies().map(StrategyConfig::label).collect();
    result.shard = options.shard.clone();
    let measured = measure(scenario, &items, options, &cancel, &mut dir, &mut result).await;
    result.interrupted = cancel.is_cancelled();
    result.finished = measured.is_ok();
    let saved = dir.write(&result);
    let ended = dir.end();
    measured?;
    saved?;
    ended?;
    let report = match options.report {
        true => Some(crate::report::render_reports(dir.path())?),
        false => None,
    };
    Ok(RunOutcome {
        result,
        dir: dir.path().to_path_buf(),
        report,
    })
}

/// A run's results before any strategy has run.
fn new_result(scenario: &Scenario, scenario_file: &Path, started_at: String) -> RunResult {
    RunResult {
        scenario_name: scenario.name.0.clone(),
        description: scenario.description.clone(),
        scenario_file: scenario_file.display().to_string(),
        workload_seed: scenario.workload().seed,
        mock_seed: matches!(scenario.target, Target::Mock { .. }).then(|| scenario.mock_seed()),
        tool_version: env!("CARGO_PKG_VERSION"),
        machine: Machine::detect(),
        started_at,
        interrupted: false,
        stopped: None,
        strategies: Vec::new(),
        skipped: Vec::new(),
        planned: Vec::new(),
        finished: false,
        capacity: None,
        shard: None,
        start: None,
    }
}

/// A run whose strategies are decided as it goes, one at a time and each on work items
/// of its own (a capacity search's probes): the target is started once, each strategy
/// runs from a reset target under the run's one budget, and the caller saves the
/// results as soon as it ends (with what it made of it, in one write), so a search
/// stopped at any point leaves every finished probe.
pub struct StepwiseRun<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    cancel: CancellationToken,
    target: TargetHandle,
    budget: Arc<Budget>,
    dir: ResultsDir,
    /// Measured once per runtime, at its first probe.
    probe_costs: ProbeCosts,
    pub result: RunResult,
}

impl<'a> StepwiseRun<'a> {
    /// Creates the results folder and starts the target.
    pub fn start(
        scenario: &'a Scenario,
        scenario_file: &Path,
        options: &'a RunOptions,
        cancel: CancellationToken,
    ) -> anyhow::Result<StepwiseRun<'a>> {
        let started_at =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let dir = ResultsDir::create(
            &options.output,
            &scenario.name.0,
            &started_at,
            scenario_file,
        )?;
        Ok(StepwiseRun {
            target: TargetHandle::start(scenario)?,
            budget: Arc::new(Budget::new(
                scenario.budget.clone(),
                scenario.target.price(),
            )),
            result: new_result(scenario, scenario_file, started_at),
            scenario,
            options,
            cancel,
            dir,
            probe_costs: ProbeCosts::new(),
        })
    }

    /// Why no more should run, if so: the run was interrupted, or its budget is spent.
    pub fn stopped(&self) -> Option<String> {
        match self.cancel.is_cancelled() {
            true => Some("an interrupt".into()),
            false => self.budget.exhausted().map(|b| format!("[budget]: {b}")),
        }
    }

    /// Runs `config` over `items`; `None` if the strategy's runtime is not available
    /// here. The caller saves, once it has added what it makes of the result.
    pub async fn strategy(
        &mut self,
        config: &StrategyConfig,
        items: WorkItems,
    ) -> anyhow::Result<Option<&StrategyResult>> {
        self.result.planned.push(config.label());
        let rows = self.dir.rows(&config.label())?;
        add_probe_cost(&mut self.probe_costs, config).await;
        let run = StrategyRun {
            scenario: self.scenario,
            items: &items,
            target: &self.target,
            options: self.options,
            budget: &self.budget,
            cancel: &self.cancel,
            folder: self.dir.path(),
            epoch: std::cell::Cell::new(None),
            ready: Arc::default(),
            probe_costs: &self.probe_costs,
        };
        let ran = run.strategy(config, rows.clone()).await;
        let written = rows.finish();
        let measured = match ran? {
            Ran::Measured(strategy) => {
                self.result.strategies.push(*strategy);
                true
            }
            Ran::Skipped(skipped) => {
                self.result.skipped.push(skipped);
                false
            }
        };
        written?;
        Ok(measured.then(|| self.result.strategies.last()).flatten())
    }

    /// Saves the results as they stand (after a change to `result`).
    pub fn save(&mut self) -> anyhow::Result<()> {
        self.result.interrupted = self.cancel.is_cancelled();
        self.result.stopped = self.budget.exhausted().map(str::to_string);
        self.dir.write(&self.result)
    }

    /// Ends the run: saves it as finished unless it was interrupted, removes the
    /// running marker, and draws the reports if asked.
    pub fn finish(mut self) -> anyhow::Result<RunOutcome> {
        self.result.finished = !self.cancel.is_cancelled();
        let saved = self.save();
        let ended = self.dir.end();
        saved?;
        ended?;
        let report = match self.options.report {
            true => Some(crate::report::render_reports(self.dir.path())?),
            false => None,
        };
        Ok(RunOutcome {
            dir: self.dir.path().to_path_buf(),
            result: self.result,
            report,
        })
    }
}

/// Starts the target and runs the strategies in order into `result`, saving after each.
async fn measure(
    scenario: &Scenario,
    items: &WorkItems,
    options: &RunOptions,
    cancel: &CancellationToken,
    dir: &mut ResultsDir,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let target = TargetHandle::start(scenario)?;
    let budget = Arc::new(Budget::new(
        scenario.budget.clone(),
        scenario.target.price(),
    ));
    let folder = dir.path().to_path_buf();
    // Before the common start is taken: it is an instant that does not wait for this.
    let probe_costs = probe_costs(scenario).await;
    let epoch = options.start_at.map(|at| start_epoch(at, options.quiet));
    let run = StrategyRun {
        scenario,
        items,
        target: &target,
        options,
        budget: &budget,
        cancel,
        folder: &folder,
        epoch: std::cell::Cell::new(epoch),
        ready: Arc::default(),
        probe_costs: &probe_costs,
    };
    for config in scenario.strategies() {
        if cancel.is_cancelled() || budget.exhausted().is_some() {
            break;
        }
        let rows = dir.rows(&config.label())?;
        let ran = run.strategy(config, rows.clone()).await;
        // What was measured is kept even if its rows could not all be written.
        let written = rows.finish();
        match ran? {
            Ran::Measured(strategy) => result.strategies.push(*strategy),
            Ran::Skipped(skipped) => result.skipped.push(skipped),
        }
        written?;
        if let (Some(at), None) = (options.start_at, &result.start) {
            let ready = run.ready.get().copied();
            result.start = Some(at.record(ready.unwrap_or_else(std::time::SystemTime::now)));
        }
        result.interrupted = cancel.is_cancelled();
        result.stopped = budget.exhausted().map(str::to_string);
        dir.write(result)?;
    }
    Ok(())
}

/// The lag probe's idle cost per wake-up ([`runtime::probe_idle_cost`]) on each runtime
/// (kind and workers) the scenario's strategies run on.
async fn probe_costs(scenario: &Scenario) -> ProbeCosts {
    let mut costs = ProbeCosts::new();
    for config in scenario.strategies() {
        add_probe_cost(&mut costs, config).await;
    }
    costs
}

/// Measures the probe's idle cost on `config`'s runtime unless `costs` has it: not for an
/// external program, whose CPU time is its own, without the probe.
async fn add_probe_cost(costs: &mut ProbeCosts, config: &StrategyConfig) {
    let runtime = runtime_of(config);
    if config.kind == StrategyKind::External
        || config.runtime.unavailable().is_some()
        || costs.contains_key(&runtime)
    {
        return;
    }
    if let Some(cost) = runtime::probe_idle_cost(runtime.0, runtime.1).await {
        costs.insert(runtime, cost);
    }
}

/// The runtime a strategy runs on, and its worker threads.
fn runtime_of(config: &StrategyConfig) -> (RuntimeKind, usize) {
    let workers = config.runtime.workers(config.workers.map(|w| w.get()));
    (config.runtime, workers)
}

/// The instant on this process's clock that `at` is. The first strategy's schedule is
/// anchored at it: its pacer waits for it after every setup is done (client, runtime),
/// and a part that is ready only after it shows the delay as its first items' dispatch
/// delay.
fn start_epoch(at: StartAt, quiet: bool) -> Instant {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let wait = at.wait_from(wall);
    if !quiet && wait > Duration::from_secs(1) {
        eprintln!(
            "waiting {:.1} s for the common start {}",
            wait.as_secs_f64(),
            crate::shard::rfc3339(at.0)
        );
    }
    match wall.duration_since(at.0) {
        Ok(late) => now.checked_sub(late).unwrap_or(now),
        Err(_) => now + wait,
    }
}

/// What became of one strategy.
enum Ran {
    Measured(Box<StrategyResult>),
    /// Its runtime cannot start here; the run goes on without it.
    Skipped(SkippedStrategy),
}

/// What every strategy of a run shares.
struct StrategyRun<'a> {
    scenario: &'a Scenario,
    items: &'a WorkItems,
    target: &'a TargetHandle,
    options: &'a RunOptions,
    budget: &'a Arc<Budget>,
    cancel: &'a CancellationToken,
    /// The run's results folder (an external program's stderr is saved there).
    folder: &'a Path,
    /// The common start, taken by the first strategy (`--start-at`).
    epoch: std::cell::Cell<Option<Instant>>,
    /// When the first strategy's runtime was up and ready to send.
    ready: Arc<std::sync::OnceLock<std::time::SystemTime>>,
    probe_costs: &'a ProbeCosts,
}

/// The lag probe's idle cost per wake-up, by runtime kind and workers.
type ProbeCosts = std::collections::HashMap<(RuntimeKind, usize), Duration>;

impl StrategyRun<'_> {
    /// Runs one strategy from a reset target and returns what it measured.
    /// Each record goes to `rows` as it is made.
    async fn strategy(&self, config: &StrategyConfig, rows: Arc<RowWriter>) -> anyhow::Result<Ran> {
        let StrategyRun {
            scenario,
            items,
            target,
            options,
            budget,
            cancel,
            folder,
            ..
        } = *self;
        let label = config.label();
        let runtime = runtime_of(config);
        let (_, workers) = runtime;
        let unavailable = config.runtime.unavailable();
        if let Some(reason) = unavailable.or_else(|| crate::strategy::program_unavailable(config)) {
            eprintln!("skipped {label}: {reason}");
            return Ok(Ran::Skipped(SkippedStrategy {
                label,
                runtime: config.runtime.describe(workers),
                reason,
            }));
        }
        let workload = scenario.workload();
        let library = config.library();
        let client = Client::new(
            &target.endpoint,
            &scenario.client,
            workload.stream,
            Carrier {
                library,
                sockets: config.runtime.sockets(),
                http2: config.http2,
            },
        )?;
        let policy = DispatchPolicy {
            retry: scenario.retry.clone(),
            budget: budget.clone(),
            cpu_work: Duration::from_micros(workload.cpu_work_us.map_or(0, |c| c.0)),
            offload: workload.offload,
            program: (config.kind == StrategyKind::External).then(|| {
                Arc::new(ProgramContext::new(
                    &scenario.target,
                    &target.endpoint,
                    (
                        workload.stream,
                        Duration::from_secs_f64(scenario.client.timeout_s.0),
                    ),
                    folder.join(format!("{label}.stderr.txt")),
                ))
            }),
        };
        let program = policy.program.clone();
        if let Some(program) = &program {
            // Its start-up is not the strategy's: the clock starts once it is ready.
            program.launch(config, cancel).await;
        }
        // The mock is reset at the strategy's zero itself, after the client is built (and
        // an external program started), so its stall window and buckets start where the
        // strategy's clock does.
        let recorder = Recorder::new(
            items.index_end(),
            config.copies(),
            scenario.slo.clone(),
            rows,
        );
        let zero = self.epoch.take().unwrap_or_else(Instant::now);
        target.reset(zero);
        let dispatcher = Dispatcher::new(
            items.clone(),
            client,
            policy,
            cancel.clone(),
            recorder.starting_at(zero),
        );
        let monitor = Monitor::start(&label, dispatcher.clone(), options.quiet);
        // One instance per copy, each with its share of the arrivals and its own view
        // of the dispatcher; without `copies`, one.
        let copies: Vec<_> = (0..config.copies()).map(|_| config.build()).collect();
        let arrivals = Arrivals::start(
            dispatcher.clone(),
            config.max_queue.map(|q| q.0),
            copies.len(),
        )?;
        let on_runtime = dispatcher.clone();
        let cpu_before = crate::cpu::client_cpu(crate::mock::THREAD_NAME);
        let ready = self.ready.clone();
        let ((), mut health) = runtime::run_on(config.runtime, workers, move || async move {
            let _ = ready.set(std::time::SystemTime::now());
            // Each copy's dispatch loop is a task of the runtime, not polled by the
            // thread that started it: on a multi-threaded runtime that thread would
            // otherwise be woken across threads (a futex call each way) for every
            // request that ends.
            let runs =
                copies
                    .iter()
                    .zip(arrivals)
                    .enumerate()
                    .map(|(copy, (strategy, arrivals))| {
                        tokio::spawn(strategy.run(on_runtime.for_copy(copy), arrivals))
                    });
            for ended in futures_util::future::join_all(runs).await {
                // A panic in a strategy stops the run as it did when the loops were
                // polled here: saved as a finished strategy it would pass for one.
                if let Err(error) = ended
                    && error.is_panic()
                {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        })
        .await?;
        let mut result = StrategyResult::new(
            label,
            config.kind,
            config.limit().map(|l| l.0),
            dispatcher.recording(),
            target.mock_report(),
            cancel.is_cancelled(),
        );
        result.runtime = config.runtime.describe(workers);
        result.copies = config.copies();
        result.client = library.as_str();
        result.client_cpu = crate::cpu::client_cpu(crate::mock::THREAD_NAME)
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        health.probe_idle_cost = self.probe_costs.get(&runtime).copied();
        result.runtime_health = Some(health);
        result.pool_peak_connections = dispatcher.peak_connections();
        result.http_version = dispatcher.http_versions();
        if let Some(run) = program.and_then(|p| p.take_run()) {
            if let Some(trouble) = run.report.trouble() {
                eprintln!("warning: {}: {trouble}", result.label);
            }
            result.with_program(run);
        }
        let counts = result.counts();
        monitor.finish(format!(
            "{:.2} s ok {} 429 {} other {}",
            result.makespan().as_secs_f64(),
            counts.ok,
            counts.rate_limited,
            counts.failed - counts.rate_limited
        ));
        Ok(Ran::Measured(Box::new(result)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mock_report_keeps_the_mock_counters_and_their_saved_layout() {
        let stats = MockStats {
            requests: 1,
            admitted: 2,
            rate_limited: 3,
            invalid: 4,
            faults: 5,
            queue_full: 6,
            token_lateness_us: [7, 8, 9],
            output_tokens_sent: 10,
            connections: 11,
            connections_refused: 12,
        };
        let report = mock_report(stats);
        assert_eq!(
            serde_json::to_value(report).unwrap(),
            serde_json::to_value(stats).unwrap(),
            "summary.json's `mock` object is unchanged"
        );
        // A summary saved before `connections` existed still loads.
        let mut older = serde_json::to_value(stats).unwrap();
        older.as_object_mut().unwrap().remove("connections");
        older.as_object_mut().unwrap().remove("connections_refused");
        let read: MockReport = serde_json::from_value(older).unwrap();
        assert_eq!((read.connections, read.connections_refused), (0, 0));
        assert_eq!(read.token_lateness_us, [7, 8, 9]);
    }
}
