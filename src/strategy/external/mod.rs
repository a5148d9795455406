//! The `external` strategy: a program of the user's own, in any language, sends the
//! requests; llmbench paces the arrivals, measures nothing of the HTTP itself, and
//! records what the program reports through the same recorder as every strategy.
//!
//! The program gets its settings in `LLMBENCH_*` environment variables and each work
//! item as a JSON line on its stdin at the item's due time ([`protocol`]); it writes a
//! JSON line per request (and its event loop's lag) on stdout. Its stderr is saved,
//! redacted, beside the results; its CPU time comes from the kernel's rusage. However
//! it ends (done, crashed, hung past `timeout_s`, killed by an interrupt, lying in its
//! records), what it wrote is kept and its outcome is classified ([`ProgramOutcome`]).

mod launch;
mod process;
mod protocol;

use super::{Arrivals, Dispatcher, Strategy};
use crate::client::{Endpoint, ErrorClass, Exchange, Redactor};
use crate::recorder::{Attempts, Outcome, micros, new_histogram};
use crate::scenario::{StrategyConfig, Target};
use crate::workload::WorkItem;
use futures_util::future::BoxFuture;
use hdrhistogram::Histogram;
use launch::{Launch, StderrCopy};
use process::{BoundedLine, read_bounded};
use protocol::{ProgramLine, Record, Zero};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

/// Longest line a program may write on stdout: a record of a long stream carries a
/// timestamp per chunk (about 20 bytes each).
pub(super) const MAX_RECORD_BYTES: usize = 4 << 20;
/// How long what a killed program wrote is still read, and its exit waited for.
pub(super) const DRAIN: Duration = Duration::from_secs(2);

/// Runs a program that sends the requests itself.
#[derive(Debug, Clone)]
pub struct ExternalStrategy {
    pub command: Vec<String>,
    pub limit: Option<u64>,
    /// `timeout_s`, if the scenario sets it.
    pub timeout: Option<Duration>,
}

impl ExternalStrategy {
    pub fn new(config: &StrategyConfig) -> ExternalStrategy {
        ExternalStrategy {
            command: config
                .command
                .as_ref()
                .map_or_else(Vec::new, |c| c.0.clone()),
            limit: config.limit().map(|l| l.0),
            timeout: config.timeout_s.map(|t| Duration::from_secs_f64(t.0)),
        }
    }
}

/// Why an external strategy cannot run on this machine, if it cannot: its program is
/// not there (no Python, a virtual environment not yet made).
pub fn program_unavailable(config: &StrategyConfig) -> Option<String> {
    let program = config.command.as_ref()?.program();
    let found = match program.contains('/') {
        true => is_executable(Path::new(program)),
        false => std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
        }),
    };
    let hint = match program.contains("venv") {
        true => "; scripts/python-venv.sh makes the reference clients' virtual environment",
        false => "; install it, or name it by its path in `command`",
    };
    (!found).then(|| format!("program \"{program}\" was not found{hint}"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What every external strategy of a run is told and given, and where it leaves its
/// account: built by the runner, which knows the target and the results folder.
pub struct ProgramContext {
    /// `LLMBENCH_*` settings of the target (base URL, API, model, the key's variable).
    settings: Vec<(String, String)>,
    secrets: Redactor,
    stderr_file: PathBuf,
    /// `[client] timeout_s`, added to the schedule for the default `timeout_s`.
    client_timeout: Duration,
    stream: bool,
    launched: Mutex<Option<Launch>>,
    ran: Mutex<Option<ProgramRun>>,
}

impl ProgramContext {
    pub fn new(
        target: &Target,
        endpoint: &Endpoint,
        (stream, client_timeout): (bool, Duration),
        stderr_file: PathBuf,
    ) -> ProgramContext {
        let api = match target {
            Target::Mock { api, .. } | Target::Openai { api, .. } => serde_json::to_value(api)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            Target::Anthropic { .. } => "messages".into(),
        };
        let mut settings = vec![
            ("LLMBENCH_BASE_URL".into(), endpoint.base_url.clone()),
            ("LLMBENCH_API".into(), api),
            ("LLMBENCH_MODEL".into(), target.model().to_string()),
            (
                "LLMBENCH_TIMEOUT_S".into(),
                client_timeout.as_secs_f64().to_string(),
            ),
        ];
        if let Some(env) = target.api_key_env() {
            settings.push(("LLMBENCH_API_KEY_ENV".into(), env.0.clone()));
        }
        ProgramContext {
            settings,
            secrets: endpoint.secrets().clone(),
            stderr_file,
            client_timeout,
            stream,
            launched: Mutex::new(None),
            ran: Mutex::new(None),
        }
    }

    /// Starts the program of `config` and waits until it is ready (at most its
    /// `timeout_s`, else `[client] timeout_s`), before the strategy's clock starts.
    pub async fn launch(&self, config: &StrategyConfig, cancel: &CancellationToken) {
        let strategy = ExternalStrategy::new(config);
        let mut env = self.settings.clone();
        env.push((
            "LLMBENCH_ZERO_NS".into(),
            protocol::monotonic_ns().to_string(),
        ));
        if let Some(limit) = strategy.limit {
            env.push(("LLMBENCH_LIMIT".into(), limit.to_string()));
        }
        let stderr = StderrCopy {
            file: self.stderr_file.clone(),
            secrets: self.secrets.clone(),
        };
        let wait = strategy.timeout.unwrap_or(self.client_timeout);
        let launch = launch::launch(&strategy.command, &env, stderr, wait, cancel).await;
        *self.launched.lock().unwrap_or_else(PoisonError::into_inner) = Some(launch);
    }

    /// The account of the program run in this context, once it has ended.
    pub fn take_run(&self) -> Option<ProgramRun> {
        self.ran
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// What the run of a program measured besides its records.
pub struct ProgramRun {
    pub report: ProgramReport,
    /// CPU time (user and system) of the program from its ready line to its end: its
    /// rusage, less its start-up's.
    pub cpu: Option<Duration>,
    /// Its event loop's lag, from its lag records, in microseconds.
    pub lag: Histogram<u64>,
    /// From its ready line to its end.
    pub wall: Duration,
}

/// How a program ended, as `summary.json` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramOutcome {
    /// Exited with status 0 after a valid record for every item it was given.
    Completed,
    /// Could not be started.
    FailedToStart,
    /// Exited with another status, or was killed by a signal not of llmbench's.
    Crashed,
    /// Still running at `timeout_s`, and killed.
    TimedOut,
    /// Wrote lines that are not records, or records that cannot be true.
    Malformed,
    /// Exited cleanly without a record for some items it was given.
    Incomplete,
    /// The run was interrupted (Ctrl-C, SIGTERM) and the program killed.
    Interrupted,
}

/// The account of a program's run, in `summary.json` as the strategy's `program`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramReport {
    pub command: Vec<String>,
    pub outcome: ProgramOutcome,
    /// How it ended: `exit status 0`, `killed by signal 9 (SIGKILL)`.
    pub exit: String,
    /// Valid request records, and loop-lag samples.
    pub records: u64,
    pub lag_samples: u64,
    /// Lines that are not records (not JSON, unknown fields, too long).
    pub malformed_lines: u64,
    /// Records that cannot be true (an item it was never given or recorded twice,
    /// times out of order or in the future); the item named is failed as `protocol`.
    pub invalid_records: u64,
    /// Items it was given and wrote no record for (failed as `timeout` if it hung, else
    /// `protocol`).
    pub omitted: u64,
    /// Items never given to it because it had ended (counted as `dropped`).
    pub never_given: u64,
    /// The first problem with its output, with its line number.
    pub problem: Option<String>,
    /// The file its stderr was saved in (redacted), in the results folder.
    pub stderr_file: String,
    /// Its last line on stderr, redacted.
    pub stderr_tail: Option<String>,
    /// From its start to its ready line, and the CPU time that took (imports, set-up):
    /// not counted in the strategy's time or CPU.
    pub startup_s: Option<f64>,
    pub startup_cpu_s: Option<f64>,
}

impl ProgramReport {
    /// What went wrong, in a sentence; `None` when it completed.
    pub fn trouble(&self) -> Option<String> {
        let what = match self.outcome {
            ProgramOutcome::Completed => return None,
            ProgramOutcome::FailedToStart => "could not be started",
            ProgramOutcome::Crashed => "crashed",
            ProgramOutcome::TimedOut => "was still running at timeout_s and was killed",
            ProgramOutcome::Malformed => "wrote records that are malformed or cannot be true",
            ProgramOutcome::Incomplete => "ended without a record for every item",
            ProgramOutcome::Interrupted => "was killed by the interrupt",
        };
        let mut text = format!("the program {what} ({})", self.exit);
        let counts = [
            (self.omitted, "items without a record"),
            (self.never_given, "items never given to it"),
            (self.malformed_lines, "malformed lines"),
            (self.invalid_records, "invalid records"),
        ];
        for (n, label) in counts.iter().filter(|(n, _)| *n > 0) {
            text.push_str(&format!("; {n} {label}"));
        }
        if let Some(problem) = &self.problem {
            text.push_str(&format!("; first problem: {problem}"));
        }
        if let Some(tail) = &self.stderr_tail {
            text.push_str(&format!("; last line on stderr: {tail}"));
        }
        text.push_str(&format!(" (stderr saved in {})", self.stderr_file));
        Some(text)
    }
}

impl Strategy for ExternalStrategy {
    fn run(&self, dispatcher: Dispatcher, arrivals: Arrivals) -> BoxFuture<'static, ()> {
        let strategy = self.clone();
        Box::pin(async move {
            let Some(context) = dispatcher.inner.policy.program.clone() else {
                return; // built without a context (a check of the build alone): nothing to run
            };
            let session = Arc::new(Session::new(dispatcher, context.clone()));
            let run = session.run(&strategy, arrivals).await;
            *context.ran.lock().unwrap_or_else(PoisonError::into_inner) = Some(run);
        })
    }
}

/// Where each item stands with the program.
#[derive(Debug, Clone, Copy)]
enum Handoff {
    Waiting,
    Given(Instant),
    Recorded,
}

/// What the program's stdout held besides the records themselves.
struct ProgramTally {
    records: u64,
    malformed_lines: u64,
    invalid_records: u64,
    problem: Option<String>,
    lag: Histogram<u64>,
}

/// How the wait for the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited,
    TimedOut,
    Interrupted,
}

/// One program's run.
struct Session {
    dispatcher: Dispatcher,
    context: Arc<ProgramContext>,
    zero: Zero,
    /// The strategy's items, held for the program's records to name by position: a
    /// program may answer any item at any time (like `semaphore`, one entry per item).
    items: Vec<WorkItem>,
    handoffs: Mutex<Vec<Handoff>>,
    tally: Mutex<ProgramTally>,
}

impl Session {
    fn new(dispatcher: Dispatcher, context: Arc<ProgramContext>) -> Session {
        let zero = Zero::of(dispatcher.epoch());
        let items: Vec<WorkItem> = dispatcher.items().iter().collect();
        Session {
            dispatcher,
            context,
            zero,
            handoffs: Mutex::new(vec![Handoff::Waiting; items.len()]),
            items,
            tally: Mutex::new(ProgramTally {
                records: 0,
                malformed_lines: 0,
                invalid_records: 0,
                problem: None,
                lag: new_histogram(),
            }),
        }
    }

    fn item(&self, slot: usize) -> &WorkItem {
        &self.items[slot]
    }

    /// The position of an arrived item among the strategy's (items come in index order).
    fn slot_of(&self, item: &WorkItem) -> usize {
        self.items
            .binary_search_by_key(&item.index, |i| i.index)
            .unwrap_or_default()
    }

    fn handoffs(&self) -> std::sync::MutexGuard<'_, Vec<Handoff>> {
        self.handoffs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, ProgramTally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `timeout_s`, or the schedule's length plus the client's timeout.
    fn timeout(&self, strategy: &ExternalStrategy) -> Duration {
        let schedule = self.items.last().map_or(Duration::ZERO, |item| item.at);
        strategy
            .timeout
            .unwrap_or(schedule + self.context.client_timeout)
    }

    async fn run(self: &Arc<Self>, strategy: &ExternalStrategy, arrivals: Arrivals) -> ProgramRun {
        let launch = self
            .context
            .launched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let launched = match launch {
            Some(Launch::Ready(launched)) => launched,
            Some(Launch::Failed(why, tail)) => {
                return self.not_started(strategy, why, tail, arrivals);
            }
            None => {
                return self.not_started(strategy, "never started".into(), None, arrivals);
            }
        };
        let launch::Launched {
            mut program,
            stdin,
            stdout,
            stderr_copy,
            cpu_before,
            startup_cpu,
            startup,
            ready,
        } = *launched;
        let feeder = tokio::spawn(self.clone().feed(stdin, arrivals));
        let mut reader = tokio::spawn(self.clone().read(stdout));
        let mut read_all = false;
        let ended = tokio::select! {
            _ = async {
                let _ = (&mut reader).await;
                read_all = true;
                program.exited().await;
            } => Ended::Exited,
            _ = tokio::time::sleep(self.timeout(strategy)) => Ended::TimedOut,
            _ = self.dispatcher.cancelled() => Ended::Interrupted,
        };
        program.kill_group();
        feeder.abort();
        if !read_all {
            // What it wrote before it was killed is kept.
            let _ = tokio::time::timeout(DRAIN, &mut reader).await;
            reader.abort();
        }
        let exit = match tokio::time::timeout(DRAIN, program.reap()).await {
            Ok(Ok(status)) => process::describe_exit(&status),
            Ok(Err(e)) => format!("exit unknown: {e}"),
            Err(_) => "did not end after being killed".into(),
        };
        let wall = ready.elapsed();
        // Its CPU while the strategy ran: its whole life's, less what getting ready took.
        let cpu = process::children_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before))
            .map(|all| all.saturating_sub(startup_cpu.unwrap_or_default()));
        let stderr_tail = match tokio::time::timeout(DRAIN, stderr_copy).await {
            Ok(Ok(tail)) => tail,
            _ => None,
        };
        let exit = match ended {
            Ended::TimedOut => format!(
                "killed after timeout_s {} s; {exit}",
                self.timeout(strategy).as_secs_f64()
            ),
            Ended::Interrupted => format!("killed by the interrupt; {exit}"),
            Ended::Exited => exit,
        };
        let (omitted, never_given) = self.settle(ended, &exit);
        let tally = std::mem::replace(
            &mut *self.tally(),
            ProgramTally {
                records: 0,
                malformed_lines: 0,
                invalid_records: 0,
                problem: None,
                lag: new_histogram(),
            },
        );
        let outcome = match ended {
            Ended::Interrupted => ProgramOutcome::Interrupted,
            Ended::TimedOut => ProgramOutcome::TimedOut,
            Ended::Exited if exit != "exit status 0" => ProgramOutcome::Crashed,
            Ended::Exited if tally.malformed_lines + tally.invalid_records > 0 => {
                ProgramOutcome::Malformed
            }
            Ended::Exited if omitted + never_given > 0 => ProgramOutcome::Incomplete,
            Ended::Exited => ProgramOutcome::Completed,
        };
        ProgramRun {
            report: ProgramReport {
                command: strategy.command.clone(),
                outcome,
                exit,
                records: tally.records,
                lag_samples: tally.lag.len(),
                malformed_lines: tally.malformed_lines,
                invalid_records: tally.invalid_records,
                omitted,
                never_given,
                problem: tally.problem,
                stderr_file: self.stderr_name(),
                stderr_tail,
                startup_s: Some(startup.as_secs_f64()),
                startup_cpu_s: startup_cpu.map(|c| c.as_secs_f64()),
            },
            cpu,
            lag: tally.lag,
            wall,
        }
    }

    fn stderr_name(&self) -> String {
        self.context
            .stderr_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The account of a program that could not be started (or was not ready): its
    /// items are all dropped.
    fn not_started(
        &self,
        strategy: &ExternalStrategy,
        why: String,
        stderr_tail: Option<String>,
        arrivals: Arrivals,
    ) -> ProgramRun {
        // Every item is dropped now: nothing would take them, so the schedule is not
        // waited out (an interrupt leaves them cancelled).
        drop(arrivals);
        let mut never_given = 0;
        if !self.dispatcher.is_cancelled() {
            for item in &self.items {
                self.dispatcher.drop_arrival(item);
                never_given += 1;
            }
        }
        ProgramRun {
            report: ProgramReport {
                command: strategy.command.clone(),
                outcome: ProgramOutcome::FailedToStart,
                exit: why,
                records: 0,
                lag_samples: 0,
                malformed_lines: 0,
                invalid_records: 0,
                omitted: 0,
                never_given,
                problem: None,
                stderr_file: self.stderr_name(),
                stderr_tail,
                startup_s: None,
                startup_cpu_s: None,
            },
            cpu: None,
            lag: new_histogram(),
            wall: Duration::ZERO,
        }
    }

    /// Gives each arrived item to the program as it arrives; closes its stdin when the
    /// schedule ends or the budget is spent.
    async fn feed(self: Arc<Self>, stdin: Option<ChildStdin>, mut arrivals: Arrivals) {
        let mut stdin = stdin;
        let state = &self.dispatcher.inner;
        while let Some(arrived) = arrivals.next().await {
            let slot = self.slot_of(&arrived);
            state
                .started
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let item = self.item(slot);
            if !state.policy.budget.admit() {
                self.handoffs()[slot] = Handoff::Recorded;
                state.recorder.not_sent(item, Outcome::OverBudget);
                stdin = None;
                continue;
            }
            let Some(pipe) = stdin.as_mut() else { continue };
            let line = protocol::work_line(slot, item, &self.zero, self.context.stream);
            self.handoffs()[slot] = Handoff::Given(Instant::now());
            state.recorder.sending();
            if pipe.write_all(&line).await.is_err() {
                // It closed its stdin or ended: the item was not given after all.
                self.handoffs()[slot] = Handoff::Waiting;
                state
                    .recorder
                    .live()
                    .in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                stdin = None;
            }
        }
    }

    /// Reads the program's stdout to its end, recording each record as it comes.
    async fn read(self: Arc<Self>, mut reader: BufReader<ChildStdout>) {
        let mut line = Vec::new();
        let mut number = 0u64;
        while let Ok(Some(read)) = read_bounded(&mut reader, &mut line, MAX_RECORD_BYTES).await {
            number += 1;
            match read {
                BoundedLine::TooLong(n) => self.malformed(
                    number,
                    format!("{n} bytes, longer than the {MAX_RECORD_BYTES} a line may be"),
                ),
                BoundedLine::Whole => self.take(number, &line),
            }
        }
    }

    fn take(&self, number: u64, text: &[u8]) {
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match protocol::read_line(text, &self.zero, Instant::now()) {
            Ok(ProgramLine::Lag(samples)) => {
                let mut tally = self.tally();
                for lag in samples {
                    tally.lag.saturating_record(micros(lag).max(1));
                }
            }
            Ok(ProgramLine::Request { index, record }) => self.record(number, index, Ok(record)),
            Err((Some(index), why)) => self.record(number, index, Err(why)),
            Err((None, why)) => self.malformed(number, why),
        }
    }

    fn malformed(&self, number: u64, why: String) {
        let mut tally = self.tally();
        tally.malformed_lines += 1;
        tally
            .problem
            .get_or_insert(format!("stdout line {number}: {why}"));
    }

    fn invalid(&self, number: u64, why: &str) {
        let mut tally = self.tally();
        tally.invalid_records += 1;
        tally
            .problem
            .get_or_insert(format!("stdout line {number}: {why}"));
    }

    /// Records item `index` from its record, or fails it with the reason its record
    /// cannot be true; a record for an item the program does not hold is refused.
    fn record(&self, number: u64, index: usize, record: Result<Record, String>) {
        let given = {
            let mut handoffs = self.handoffs();
            match handoffs.get(index).copied() {
                Some(Handoff::Given(at)) => {
                    handoffs[index] = Handoff::Recorded;
                    at
                }
                Some(Handoff::Recorded) => {
                    return self.invalid(number, &format!("item {index} has a record already"));
                }
                Some(Handoff::Waiting) => {
                    return self.invalid(
                        number,
                        &format!("item {index} was never given to the program"),
                    );
                }
                None => {
                    let items = handoffs.len();
                    return self.invalid(
                        number,
                        &format!("index {index} is not an item (there are {items})"),
                    );
                }
            }
        };
        let record =
            record.and_then(
                |r| match r.exchange.sent + Duration::from_millis(1) < given {
                    true => Err("sent_ns is before the item was given to the program".into()),
                    false => Ok(r),
                },
            );
        let state = &self.dispatcher.inner;
        let item = self.item(index);
        match record {
            Ok(Record { mut exchange, gaps }) => {
                self.tally().records += 1;
                let mut gap_sink = state.recorder.gap_sink(item);
                gaps.into_iter().for_each(&mut gap_sink);
                if let Some((_, message)) = &mut exchange.error {
                    *message = crate::client::keep_message(&self.context.secrets, message);
                }
                if exchange.error.is_none() {
                    state
                        .policy
                        .budget
                        .spend(item.prompt_tokens, exchange.output_tokens);
                }
                let attempts = attempt(exchange.sent);
                state.recorder.finish(item, &attempts, exchange);
            }
            Err(why) => {
                self.invalid(number, &format!("item {index}: {why}"));
                let why = format!("invalid record from the program (stdout line {number}): {why}");
                self.fail(index, given, ErrorClass::Protocol, &why);
            }
        }
    }

    /// Records item `slot`, given to the program at `given`, as failed.
    fn fail(&self, slot: usize, given: Instant, class: ErrorClass, why: &str) {
        let mut exchange = Exchange::new(given);
        exchange.end = Instant::now();
        exchange.error = Some((
            class,
            crate::client::keep_message(&self.context.secrets, why),
        ));
        let item = self.item(slot);
        self.dispatcher
            .inner
            .recorder
            .finish(item, &attempt(given), exchange);
    }

    /// Settles the items the program left: those it was given without a record are
    /// failed (cancelled on an interrupt), those never given are dropped. Returns the
    /// counts of each.
    fn settle(&self, ended: Ended, exit: &str) -> (u64, u64) {
        let handoffs = std::mem::take(&mut *self.handoffs());
        let recorder = &self.dispatcher.inner.recorder;
        let (mut omitted, mut never_given) = (0, 0);
        for (slot, handoff) in handoffs.into_iter().enumerate() {
            let item = self.item(slot);
            match (handoff, ended) {
                (Handoff::Given(at), Ended::Interrupted) => {
                    recorder.cancel_in_flight(item, &attempt(at));
                }
                (Handoff::Given(at), _) => {
                    omitted += 1;
                    let class = match ended {
                        Ended::TimedOut => ErrorClass::Timeout,
                        _ => ErrorClass::Protocol,
                    };
                    let why = format!("the program wrote no record for this item ({exit})");
                    self.fail(slot, at, class, &why);
                }
                (Handoff::Waiting, Ended::Exited | Ended::TimedOut) => {
                    never_given += 1;
                    self.dispatcher.drop_arrival(item);
                }
                _ => {}
            }
        }
        (omitted, never_given)
    }
}

/// One attempt, sent at `sent`: llmbench's retries do not reach into a program.
fn attempt(sent: Instant) -> Attempts {
    Attempts {
        first_sent: sent,
        count: 1,
        backoff: Duration::ZERO,
    }
}
