//! The `llmbench` command: parses the command line, runs the library's stages and
//! turns their outcomes into messages and exit codes. Owns no measurement logic.

mod cli;

/// `eprintln!` that ignores a closed stderr (the terminal of a dropped ssh session, which
/// also sends SIGHUP): the results on disk matter more than the message.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed or broken stdout (`llmbench run … | head`): output
/// is a courtesy, results are on disk, and a benchmark tool must not panic over it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

use clap::Parser;
use cli::{Cli, Command};
use llmbench::report::table::ResultTable;
use llmbench::runner::{self, RunOptions};
use llmbench::scenario::Scenario;
use llmbench::workload::WorkItems;
use std::path::Path;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system allocator (as oha uses jemalloc): the client
/// allocates and frees per request on several threads (a task, its response buffers,
/// the row handed to the writer thread), and glibc's malloc spent a tenth of the
/// client's CPU on that at 50,000 requests a second, most of it returning pages to the
/// system and faulting them back in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its index in `mi_option_e` of mimalloc 3, which
/// libmimalloc-sys builds (its Rust bindings name only mimalloc 2's options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory is kept for reuse instead of being returned to the system a second
/// later (mimalloc's default): the heap warmed before a run (`heap::warm`), or grown
/// into by an earlier strategy, is then still backed when a measurement grows into
/// it. The process holds what its peak needed, which is what it reports as its peak.
fn keep_freed_memory() {
    // SAFETY: a plain store into mimalloc's option table, made first thing in `main`,
    // before any thread exists to read it; -1 is its documented "never".
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Invalid input: a scenario or argument the user must fix (clap uses 2 as well).
const EXIT_INVALID: u8 = 2;
const EXIT_FAILED: u8 = 1;
use llmbench::slo::EXIT_SLO_FAILED;
/// The signal that interrupted a run (0: none yet); the exit code is 128 + it, by the
/// shell's convention (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
static INTERRUPTED_BY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// SIGINT's number, for the exit code of an interrupt from a platform without others.
const SIGINT: u8 = 2;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    // Every request in flight holds a socket (and the embedded mock one more): raise
    // the soft open-file limit to the hard one, as load generators must, instead of
    // failing at the common default of 1024.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match cli.command {
        Command::Run {
            scenario,
            send,
            strategies,
            shard,
            shards,
            start_at,
        } => run(
            &scenario,
            &strategies,
            RunOptions {
                start_at,
                ..options(&send)
            },
            Consent::of(&send),
            shard.map(Ok).or_else(|| {
                let index = std::env::var(llmbench::shard::JOB_INDEX_VAR).ok();
                shards.map(|n| llmbench::shard::ShardSpec::from_job_index(n, index.as_deref()))
            }),
        ),
        Command::Merge {
            parts,
            output,
            allow_partial,
            max_skew_ms,
            no_report,
        } => merge(
            &llmbench::merge::MergeOptions {
                parts,
                output,
                allow_partial,
                max_skew_ms,
            },
            !no_report,
        ),
        Command::Capacity {
            scenario,
            send,
            strategy,
        } => capacity(
            &scenario,
            strategy.as_deref(),
            options(&send),
            Consent::of(&send),
        ),
        Command::Quota { scenario } => quota(&scenario),
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Report { dir } => report(&dir),
        Command::Mock {
            scenario,
            host,
            port,
            warm_mib,
        } => serve_mock(
            scenario.as_deref(),
            std::net::SocketAddr::new(host, port),
            warm_mib << 20,
        ),
        Command::Compare {
            baseline,
            candidate,
            threshold,
        } => compare(&baseline, &candidate, threshold),
    }
}

/// The descriptors a standalone mock reserves before it says it listens
/// ([`llmbench::descriptors::reserve`]), within the open-file limit: not knowing how
/// many connections will come, room for 65,536 (a table of 512 KiB), so that accepting
/// them never stalls it; past that the table grows as it must.
const MOCK_DESCRIPTORS: u64 = 1 << 16;

fn serve_mock(scenario: Option<&Path>, addr: std::net::SocketAddr, warm_bytes: u64) -> ExitCode {
    let (config, seed) = match scenario.map(llmbench::scenario::load_mock_config) {
        Some(Ok(loaded)) => loaded,
        Some(Err(e)) => {
            err!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
        None => (Default::default(), 0),
    };
    let mock = match llmbench::mock::MockServer::start(config, seed, addr) {
        Ok(mock) => mock,
        Err(e) => {
            err!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    // Bound first, so that a port in use is said at once; warmed before it says it
    // listens, so that a client waiting for that line meets a warm heap.
    let footprint = llmbench::plan::Footprint {
        heap: warm_bytes,
        descriptors: MOCK_DESCRIPTORS,
    };
    let warmed = footprint.set_aside();
    out!("llmbench mock listening on {}", mock.base_url());
    out!(
        "  POST /v1/chat/completions, /v1/completions, /v1/responses (OpenAI)   POST /v1/messages (Anthropic)   GET /v1/models   GET /health   GET /metrics"
    );
    if warmed.bytes > 0 {
        out!(
            "  {} MiB of heap warmed in {} ms (--warm-mib)",
            warmed.bytes >> 20,
            warmed.took.as_millis()
        );
    }
    out!("Ctrl-C to stop");
    let (stop, stopped) = std::sync::mpsc::channel();
    if ctrlc_handler(stop).is_err() {
        err!("error: cannot watch for Ctrl-C");
        return ExitCode::from(EXIT_FAILED);
    }
    let _ = stopped.recv();
    let stats = mock.stats();
    out!(
        "served {} requests ({} rate limited) on {} connections ({} refused); {} tokens streamed",
        stats.requests,
        stats.rate_limited,
        stats.connections,
        stats.connections_refused,
        stats.output_tokens_sent
    );
    if stats.output_tokens_sent > 0 {
        let [p50, p99, max] = stats.token_lateness_us.map(|us| us as f64 / 1000.0);
        out!(
            "token lateness against the schedule: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
    }
    ExitCode::SUCCESS
}

/// Sends on `stop` at the first Ctrl-C (on a small runtime of its own: the mock's
/// runtime serves requests and is not to be shared).
fn ctrlc_handler(stop: std::sync::mpsc::Sender<()>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let _ = stop.send(());
    });
    Ok(())
}

fn report(dir: &Path) -> ExitCode {
    match llmbench::report::render_reports(dir) {
        Ok(rendered) => {
            if let Some(incomplete) = &rendered.incomplete {
                err!(
                    "warning: {} is an incomplete run: {incomplete}; the report covers what was saved",
                    dir.display()
                );
            }
            out!(
                "{} charts, report.md and report.html written to {}",
                rendered.charts,
                dir.display()
            );
            out!("{}", rendered.recommendation.replace("**", ""));
            slo_exit(&rendered, ExitCode::SUCCESS)
        }
        Err(e) => {
            err!("error: {e:#}");
            exit_for(&e)
        }
    }
}

/// The exit code for a failed `report` or `compare`: 1 when a file could not be
/// written (a full disk, no permission), 2 for a folder that is not a readable run.
fn exit_for(e: &anyhow::Error) -> ExitCode {
    let failed_io = e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            !matches!(
                io.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
            )
        })
    });
    ExitCode::from(if failed_io { EXIT_FAILED } else { EXIT_INVALID })
}

/// `ok` unless an SLO was missed.
fn slo_exit(rendered: &llmbench::report::Rendered, ok: ExitCode) -> ExitCode {
    if rendered.slo_failed {
        err!("SLO missed: see the report's \"Service-level objectives\" table");
        ExitCode::from(EXIT_SLO_FAILED)
    } else {
        ok
    }
}

/// Reads a scenario and the work items it offers (prompt and trace files included), so
/// every input error is reported before any traffic.
fn load(path: &Path) -> Result<(Scenario, WorkItems), ExitCode> {
    let invalid = |e: &dyn std::fmt::Display| {
        err!("error: {e}");
        ExitCode::from(EXIT_INVALID)
    };
    let scenario = Scenario::load(path).map_err(|e| invalid(&e))?;
    let items = llmbench::workload::load(&scenario).map_err(|e| invalid(&e))?;
    Ok((scenario, items))
}

fn validate(paths: &[std::path::PathBuf]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in paths {
        match load(path) {
            Ok((scenario, items)) => {
                let strategies: Vec<String> = scenario.strategies().map(|s| s.label()).collect();
                let span = items.last().map_or(0.0, |i| i.at.as_secs_f64());
                out!(
                    "{}: ok — {} requests arriving over {span:.1} s × {} ({})",
                    path.display(),
                    items.len(),
                    llmbench::plan::count_strategies(strategies.len()),
                    strategies.join(", ")
                );
                warn_of_socket_shortage(&scenario, &items);
            }
            Err(code) => status = code,
        }
    }
    status
}

/// Says before any traffic when the run may need more sockets than the process may open.
fn warn_of_socket_shortage(scenario: &Scenario, items: &WorkItems) {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    if let Some(why) = llmbench::plan::socket_shortage(scenario, items, limit) {
        err!("warning: {why}");
    }
}

/// The run's guard-rail flags.
struct Consent {
    dry_run: bool,
    yes: bool,
}

impl Consent {
    fn of(send: &cli::SendArgs) -> Consent {
        Consent {
            dry_run: send.dry_run,
            yes: send.yes,
        }
    }
}

/// The run's options from the command line (a part and a common start are set apart).
fn options(send: &cli::SendArgs) -> RunOptions {
    RunOptions {
        output: send.output.clone(),
        quiet: send.quiet,
        report: !send.no_report,
        shard: None,
        start_at: None,
    }
}

/// Shows `plan` (a run's or a search's, sent to `target`) where it matters and decides
/// whether to go on: `Some(code)` stops. A non-loopback target needs `--yes`, or a "y"
/// typed at the terminal; the plan is shown to stderr when asked about.
fn guard(
    plan: &dyn std::fmt::Display,
    target: &str,
    loopback: bool,
    consent: &Consent,
) -> Option<ExitCode> {
    if consent.dry_run {
        out!("{plan}");
        return Some(ExitCode::SUCCESS);
    }
    if loopback || consent.yes {
        return None;
    }
    err!("{plan}");
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        err!(
            "error: {target} is not on this machine and may charge for these requests: \
             run again with --yes to send them (--dry-run shows the plan only)"
        );
        return Some(ExitCode::from(EXIT_INVALID));
    }
    {
        use std::io::Write as _;
        let _ = write!(
            std::io::stderr().lock(),
            "send these requests to {target}? [y/N] "
        );
    }
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
        None
    } else {
        err!("not sent");
        Some(ExitCode::from(EXIT_INVALID))
    }
}

fn run(
    path: &Path,
    only: &[String],
    mut options: RunOptions,
    consent: Consent,
    shard: Option<Result<llmbench::shard::ShardSpec, String>>,
) -> ExitCode {
    let (mut scenario, mut items) = match load(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(e) = scenario.keep_strategies(only) {
        err!("error: --strategy: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    if let Err(e) = take_shard(path, &scenario, &mut items, &mut options, shard) {
        err!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let plan = llmbench::plan::Plan::of(&scenario, &items);
    if let Some(code) = guard(&plan, &plan.target, plan.loopback, &consent) {
        return code;
    }
    warn_of_socket_shortage(&scenario, &items);
    if !matches!(scenario.target, llmbench::scenario::Target::Mock { .. })
        && let Err(e) = llmbench::client::Endpoint::live(&scenario.target, scenario.folder())
    {
        err!("error: {}: {e}", path.display());
        return ExitCode::from(EXIT_INVALID);
    }
    llmbench::plan::Footprint::of(&scenario, scenario.strategies(), items.len() as u64).set_aside();
    on_runtime(|cancel| async move {
        match runner::run(&scenario, items, path, &options, cancel).await {
            Ok(outcome) => finish_run(&outcome),
            Err(e) => {
                err!("error: {e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}

/// Runs `work` on a multi-threaded runtime, with a token the first signal cancels.
fn on_runtime<F: std::future::Future<Output = ExitCode>>(
    work: impl FnOnce(CancellationToken) -> F,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        // Listening before the run starts: a signal in its first moments (while the
        // results folder is made) stops it cleanly too.
        if let Ok(signals) = Signals::listen() {
            tokio::spawn(interrupt_on_signal(signals, cancel.clone()));
        }
        work(cancel).await
    })
}

/// `llmbench capacity`: checks the search, shows what it may spend, runs it.
fn capacity(
    path: &Path,
    strategy: Option<&str>,
    options: RunOptions,
    consent: Consent,
) -> ExitCode {
    // Only the scenario: the probes read the prompts file and draw their own items.
    let scenario = match Scenario::load(path) {
        Ok(scenario) => scenario,
        Err(e) => {
            err!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let probes = match llmbench::capacity::Probes::new(&scenario, strategy) {
        Ok(probes) => probes,
        Err(e) => {
            err!("error: {}: {e}", path.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let plan = probes.plan();
    if let Some(code) = guard(&plan, &plan.target, plan.loopback, &consent) {
        return code;
    }
    // Shown once: a plan asked about was shown then.
    if !options.quiet && (plan.loopback || consent.yes) {
        err!("{plan}");
    }
    probes.footprint().set_aside();
    on_runtime(|cancel| async move {
        match llmbench::capacity::run(&probes, path, &options, cancel).await {
            Ok(outcome) => finish_capacity(&outcome),
            Err(e) => {
                err!("error: {e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}

/// Prints the answer and where it went; the exit code says how the search went.
fn finish_capacity(outcome: &runner::RunOutcome) -> ExitCode {
    use llmbench::search::SearchStatus;
    let Some(answer) = &outcome.result.capacity else {
        return ExitCode::from(EXIT_FAILED);
    };
    out!("{}", answer.sentence());
    if let Some(r) = &answer.replicas {
        out!(
            "replicas for {} req/s at {:.0} % of the boundary: {}",
            r.target_rps,
            r.headroom * 100.0,
            r.count
        );
    }
    out!("results: {}", outcome.dir.display());
    if outcome.report.is_some() {
        out!(
            "report:  {}",
            outcome.dir.join(llmbench::report::html::FILE).display()
        );
    }
    if outcome.result.interrupted {
        return interrupted("the answer covers the probes run");
    }
    if let Some(why) = outcome.result.nothing_answered() {
        err!("error: {why}");
        return ExitCode::from(EXIT_FAILED);
    }
    match answer.status {
        SearchStatus::LowestFails => ExitCode::from(EXIT_SLO_FAILED),
        _ => ExitCode::SUCCESS,
    }
}

/// `llmbench quota`: the batch against the quota, sending nothing.
fn quota(path: &Path) -> ExitCode {
    let (scenario, items) = match load(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    use llmbench::planner;
    let planned = planner::QuotaRules::of(&scenario).and_then(|rules| {
        let batch = planner::Batch::of(&scenario, &items);
        let latency = planner::latency(&scenario, &batch)?;
        planner::plan(&scenario, &batch, &rules, latency)
    });
    match planned {
        Ok(plan) => {
            out!("{plan}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            err!("error: {}: {e}", path.display());
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// With `--shard` or `--start-at`: checks that the run can be a part (one strategy, no
/// embedded mock, a start within reach, and `--start-at` with `--shard`), records which part it is and the hash of the
/// whole run, and keeps only this part's items, at their times in the whole schedule.
fn take_shard(
    path: &Path,
    scenario: &Scenario,
    items: &mut WorkItems,
    options: &mut RunOptions,
    shard: Option<Result<llmbench::shard::ShardSpec, String>>,
) -> Result<(), String> {
    let shard = shard.transpose()?;
    let flag = match (shard, options.start_at) {
        (None, None) => return Ok(()),
        (Some(_), _) => "--shard",
        (None, Some(_)) => "--start-at",
    };
    let labels: Vec<String> = scenario.strategies().map(|s| s.label()).collect();
    if labels.len() != 1 {
        return Err(format!(
            "{flag} runs one strategy: choose it with --strategy LABEL (this scenario has {})",
            labels.join(", ")
        ));
    }
    if let Some(at) = options.start_at {
        at.check(std::time::SystemTime::now())?;
    }
    let Some(shard) = shard else { return Ok(()) };
    if matches!(scenario.target, llmbench::scenario::Target::Mock { .. }) {
        return Err(format!(
            "{}: --shard needs one server that every part shares, and an embedded mock would give each part its own quota: start `llmbench mock {}` once and point [target] at it (kind = \"openai\", base_url = its address)",
            path.display(),
            path.display()
        ));
    }
    if options.start_at.is_none() {
        // The merge refuses parts without one common start: say so before the run.
        return Err(format!(
            "{}: a part of a sharded run (--shard or --shards) needs --start-at TIME, one instant given to every part (RFC 3339, like 2026-11-29T12:00:00Z, or Unix seconds): parts that start on their own cannot be merged",
            path.display()
        ));
    }
    let file = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Item by item, so a long schedule is hashed without a copy of it.
    let schedule = items.iter().map(|item| {
        let mut bytes = format!(
            "{} {} {} {} ",
            item.index,
            item.at.as_nanos(),
            item.prompt_tokens,
            item.max_tokens
        )
        .into_bytes();
        bytes.extend_from_slice(item.prompt.as_deref().unwrap_or("").as_bytes());
        bytes
    });
    let whole = [file, labels[0].clone().into_bytes()];
    options.shard = Some(llmbench::shard::ShardRecord {
        index: shard.index,
        count: shard.count,
        scenario_hash: llmbench::shard::stable_hash(whole.into_iter().chain(schedule)),
    });
    *items = items.part(shard.index, shard.count);
    Ok(())
}

fn merge(options: &llmbench::merge::MergeOptions, draw: bool) -> ExitCode {
    let merged = match llmbench::merge::merge(options) {
        Ok(merged) => merged,
        Err(e) => {
            err!("error: {e:#}");
            return exit_for(&e);
        }
    };
    out!(
        "{}",
        ResultTable::new(&merged.summary.strategies).to_console()
    );
    if let Some(record) = &merged.summary.merged {
        out!(
            "merged {} of {} shards; their starts {:.1} ms apart",
            record.parts.len(),
            record.count,
            record.start_skew_ms
        );
    }
    if let Some(incomplete) = &merged.incomplete {
        err!("warning: the merged run is incomplete: {incomplete}");
    }
    out!("results: {}", options.output.display());
    if !draw {
        return ExitCode::SUCCESS;
    }
    match llmbench::report::render_reports(&options.output) {
        Ok(rendered) => {
            out!("{}", rendered.recommendation.replace("**", ""));
            slo_exit(&rendered, ExitCode::SUCCESS)
        }
        Err(e) => {
            err!("error: {e:#}");
            exit_for(&e)
        }
    }
}

/// Prints the table and where everything went; the exit code says how the run went.
fn finish_run(outcome: &runner::RunOutcome) -> ExitCode {
    let summary = llmbench::summary::Summary::from_run(&outcome.result);
    if !summary.strategies.is_empty() {
        out!("{}", ResultTable::new(&summary.strategies).to_console());
    }
    warn_client_bound(&summary.strategies);
    for skipped in &summary.skipped {
        out!("skipped: {} ({})", skipped.label, skipped.reason);
    }
    out!("results: {}", outcome.dir.display());
    if let Some(report) = &outcome.report {
        out!(
            "report:  {}",
            outcome.dir.join(llmbench::report::html::FILE).display()
        );
        out!("{}", report.recommendation.replace("**", ""));
    }
    if let Some(reason) = &outcome.result.stopped {
        err!("stopped early: {reason} ([budget]); later requests were not sent");
    }
    if outcome.result.interrupted {
        return interrupted("the results above cover what ran");
    }
    if outcome.result.every_strategy_skipped() {
        let skipped: Vec<&str> = summary.skipped.iter().map(|s| s.label.as_str()).collect();
        err!(
            "error: nothing was measured: every strategy was skipped ({}), for the reasons above",
            skipped.join(", ")
        );
        return ExitCode::from(EXIT_FAILED);
    }
    if let Some(why) = outcome.result.nothing_answered() {
        err!("error: {why}");
        err!("check that the target is running and reachable, and its key and model");
        return ExitCode::from(EXIT_FAILED);
    }
    match &outcome.report {
        Some(report) => slo_exit(report, ExitCode::SUCCESS),
        None => ExitCode::SUCCESS,
    }
}

/// Says what an interrupted run kept (`what`, before the signal's name) and exits with
/// 128 + the signal.
fn interrupted(what: &str) -> ExitCode {
    let signal = match INTERRUPTED_BY.load(std::sync::atomic::Ordering::Acquire) {
        0 => SIGINT,
        signal => signal,
    };
    err!("interrupted: {what} before {}", signal_name(signal));
    ExitCode::from(128 + signal)
}

/// A warning for every strategy whose client, not the server, was the bottleneck.
fn warn_client_bound(strategies: &[llmbench::summary::StrategySummary]) {
    for s in strategies {
        let health = s.client_health.as_ref();
        if let Some(reason) = health.and_then(llmbench::summary::ClientHealth::bottleneck) {
            err!(
                "warning: {}: the client, not the server, was the bottleneck ({reason}): its latencies are the client's, not the server's",
                s.label
            );
        }
    }
}

/// First SIGINT (Ctrl-C), SIGTERM (`timeout`, `docker stop`, Kubernetes, CI
/// cancellation) or SIGHUP (a dropped ssh session): stop dispatching, record in-flight
/// requests as cancelled and save. A second one: quit at once.
async fn interrupt_on_signal(mut signals: Signals, cancel: CancellationToken) {
    let first = signals.next().await;
    INTERRUPTED_BY.store(first, std::sync::atomic::Ordering::Release);
    err!(
        "\ninterrupting on {}: saving what was measured (again to quit at once)",
        signal_name(first)
    );
    cancel.cancel();
    let second = signals.next().await;
    std::process::exit(128 + i32::from(second));
}

/// The signals that stop a run.
struct Signals {
    #[cfg(unix)]
    listeners: Vec<(u8, tokio::signal::unix::Signal)>,
}

impl Signals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            (2, SignalKind::interrupt()),
            (15, SignalKind::terminate()),
            (1, SignalKind::hangup()),
        ];
        let listeners = kinds
            .into_iter()
            .map(|(number, kind)| Ok((number, signal(kind)?)))
            .collect::<std::io::Result<_>>()?;
        Ok(Signals { listeners })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for the next signal and returns its number.
    #[cfg(unix)]
    async fn next(&mut self) -> u8 {
        let waits = self.listeners.iter_mut().map(|(number, listener)| {
            let number = *number;
            Box::pin(async move {
                listener.recv().await;
                number
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> u8 {
        let _ = tokio::signal::ctrl_c().await;
        SIGINT
    }
}

fn signal_name(number: u8) -> &'static str {
    match number {
        1 => "SIGHUP",
        15 => "SIGTERM",
        _ => "Ctrl-C",
    }
}

fn compare(baseline: &Path, candidate: &Path, threshold: f64) -> ExitCode {
    match llmbench::compare::compare(baseline, candidate, threshold) {
        Ok(comparison) => {
            for warning in &comparison.warnings {
                err!("warning: {warning}; compared what was saved");
            }
            out!("{}", comparison.table.to_console());
            out!("written: {}", comparison.written.display());
            if comparison.regressions.is_empty() {
                out!("no regression beyond {threshold} %");
                ExitCode::SUCCESS
            } else {
                for r in &comparison.regressions {
                    err!("regression: {r}");
                }
                ExitCode::from(EXIT_SLO_FAILED)
            }
        }
        Err(e) => {
            err!("error: {e:#}");
            exit_for(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_kept_is_mimallocs_purge_delay() {
        // Its default is 1000 ms; the options beside it default to 1 and 0, so an
        // index shifted by a mimalloc upgrade fails here.
        // SAFETY: a read of mimalloc's option table, which nothing else writes in this
        // test process.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 1000);
    }
}
