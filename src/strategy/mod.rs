//! Dispatch strategies: how the same list of work items is scheduled onto the runtime.
//!
//! Work items arrive on a schedule ([`Arrivals`]); a strategy decides only *when* each
//! arrived item is sent, and [`Dispatcher::execute`] does the sending, timing and
//! recording, identically for all. Adding a strategy means one file implementing
//! [`Strategy`] plus a variant of the scenario's `StrategyKind` and its arm in
//! [`StrategyConfig::build`]. A strategy that reacts to what the server says (a quota
//! limiter, an adaptive limit) passes a [`Gate`] to [`Dispatcher::execute_gated`]: it
//! hears every attempt's [`Feedback`] and may hold back retries.
//!
//! Above the client, recorder, retry and budget, which it drives; below the runner.

mod adaptive;
mod arrivals;
mod external;
mod join_all;
mod joinset;
mod rate;
mod semaphore;
mod serial;

pub use adaptive::{AdaptiveStrategy, Aimd, Vegas};
pub use arrivals::Arrivals;
pub use external::{
    ExternalStrategy, ProgramContext, ProgramOutcome, ProgramReport, ProgramRun,
    program_unavailable,
};
pub use join_all::JoinAllStrategy;
pub use joinset::JoinSetStrategy;
pub use rate::RateStrategy;
pub use semaphore::SemaphoreStrategy;
pub use serial::SerialStrategy;

use crate::budget::Budget;
use crate::client::Client;
use crate::client::{ErrorClass, Exchange};
use crate::quota::Dimension;
use crate::recorder::timeline::LimitUnit;
use crate::recorder::{Attempts, Recorder};
use crate::retry::Decision;
use crate::scenario::{RetryConfig, StrategyConfig, StrategyKind};
use crate::workload::{WorkItem, WorkItems};
use futures_util::future::BoxFuture;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A way of dispatching work items.
pub trait Strategy: Send + Sync {
    /// Executes every item that `arrivals` yields, once, returning when all are done.
    /// Items wait (and are recorded as waiting) until the strategy sends them.
    fn run(&self, dispatcher: Dispatcher, arrivals: Arrivals) -> BoxFuture<'static, ()>;
}

impl StrategyConfig {
    /// Builds the strategy of this (checked) entry.
    pub fn build(&self) -> Box<dyn Strategy> {
        let limit = self.limit().map(|l| l.get());
        match self.kind {
            StrategyKind::Serial => Box::new(SerialStrategy),
            StrategyKind::JoinAll => Box::new(JoinAllStrategy),
            StrategyKind::Semaphore => Box::new(SemaphoreStrategy {
                limit: limit.unwrap_or(1),
            }),
            StrategyKind::JoinSet => Box::new(JoinSetStrategy {
                limit: limit.unwrap_or(1),
            }),
            StrategyKind::Rate => {
                let quota = [
                    (Dimension::Requests, self.rpm),
                    (Dimension::Tokens, self.tpm),
                    (Dimension::InputTokens, self.itpm),
                    (Dimension::OutputTokens, self.otpm),
                ];
                Box::new(RateStrategy {
                    quota: quota
                        .into_iter()
                        .filter_map(|(d, n)| Some((d, n?.0)))
                        .collect(),
                    headroom: self.headroom(),
                    limit,
                })
            }
            StrategyKind::Adaptive => Box::new(AdaptiveStrategy {
                ceiling: usize::try_from(self.in_flight_cap().unwrap_or(1)).unwrap_or(usize::MAX),
                initial: usize::try_from(self.start_limit()).unwrap_or(usize::MAX),
                signal: self.signal.unwrap_or_default(),
            }),
            StrategyKind::External => Box::new(ExternalStrategy::new(self)),
        }
    }
}

/// What a strategy hears of one attempt, before the retry policy decides on it.
#[derive(Debug, Clone, Copy)]
pub struct Feedback {
    /// When the attempt was handed to the HTTP client, and when it ended.
    pub sent: Instant,
    pub end: Instant,
    pub status: Option<u16>,
    /// Answered in full (no error of any kind).
    pub answered: bool,
    /// Refused by a rate limit (429).
    pub rate_limited: bool,
    /// The server's `retry-after-ms` / `retry-after`, on a refusal.
    pub retry_after: Option<Duration>,
    pub output_tokens: u32,
}

impl Feedback {
    /// The feedback of `exchange`; a server hint longer than `max_hint` (the retry
    /// policy's `max_retry_after_s`) is not passed on, so no strategy waits on it.
    fn of(exchange: &Exchange, max_hint: Duration) -> Feedback {
        let class = exchange.error.as_ref().map(|(class, _)| *class);
        Feedback {
            sent: exchange.sent,
            end: exchange.end,
            status: exchange.status,
            answered: class.is_none(),
            rate_limited: class == Some(ErrorClass::RateLimited) || exchange.status == Some(429),
            retry_after: exchange.retry_after.filter(|hint| *hint <= max_hint),
            output_tokens: exchange.output_tokens,
        }
    }

    /// The attempt's latency, sent to its end.
    pub fn latency(&self) -> Duration {
        self.end.saturating_duration_since(self.sent)
    }
}

/// A strategy's say in the attempts the dispatcher makes for it: the strategy decides
/// when an item's first attempt goes; through its gate it also hears every attempt's
/// outcome and decides when a retry may go.
pub trait Gate: Send + Sync {
    /// Waits until a retry of `item` may be sent (a quota charged, a pause waited out).
    fn before_retry<'a>(&'a self, item: &'a WorkItem) -> BoxFuture<'a, ()>;
    /// Hears how an attempt of `item` went, before the retry decision.
    fn after_attempt(&self, item: &WorkItem, feedback: &Feedback);
}

/// How the dispatcher treats each request, besides sending it.
pub struct DispatchPolicy {
    pub retry: RetryConfig,
    pub budget: Arc<Budget>,
    /// CPU time spent after each answered response (simulated post-processing).
    pub cpu_work: Duration,
    /// Spend it with `spawn_blocking`, off the runtime's threads.
    pub offload: bool,
    /// An `external` strategy's target settings and results file; `None` for the rest.
    pub program: Option<Arc<ProgramContext>>,
}

impl DispatchPolicy {
    /// The simulated post-processing of a response: busy CPU, on the runtime's thread
    /// (stalling every other task there) or offloaded to the blocking pool.
    async fn post_process(&self) {
        if self.cpu_work.is_zero() {
            return;
        }
        let work = self.cpu_work;
        if self.offload {
            let _ = tokio::task::spawn_blocking(move || crate::cpu::spin(work)).await;
        } else {
            crate::cpu::spin(work);
        }
    }
}

/// The retry jitter of one item: drawn from a generator seeded by the item's index, so
/// that a rerun retries on the same schedule. The generator is made at the first draw:
/// seeding one costs hundreds of instructions, and it would be part of every request's
/// future, where most requests are never retried.
struct Jitter {
    seed: u64,
    rng: Option<Box<ChaCha8Rng>>,
}

impl Jitter {
    fn of(item: &WorkItem) -> Jitter {
        Jitter {
            seed: u64::from(item.index),
            rng: None,
        }
    }

    fn rng(&mut self) -> &mut ChaCha8Rng {
        let seed = self.seed;
        self.rng
            .get_or_insert_with(|| Box::new(ChaCha8Rng::seed_from_u64(seed)))
    }
}

impl RngCore for Jitter {
    fn next_u32(&mut self) -> u32 {
        self.rng().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.rng().next_u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rng().fill_bytes(dst)
    }
}

/// Executes work items for a strategy: cheap to clone into tasks. With `copies`, each
/// copy of the strategy holds its own view ([`Dispatcher::for_copy`]) of one shared
/// dispatcher: one client, one recorder, the items split between them.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<DispatchState>,
    /// Which copy of the strategy this view serves (0 without copies).
    copy: usize,
}

struct DispatchState {
    items: WorkItems,
    client: Client,
    policy: DispatchPolicy,
    recorder: Recorder,
    cancel: CancellationToken,
    /// The strategy's start: item `i` is due at `epoch` + its `at`.
    epoch: Instant,
    /// Items released by the pacer, and items whose sending has begun: the difference
    /// is the client-side queue.
    arrived: AtomicU64,
    started: AtomicU64,
    /// The limit each copy has in effect; the strategy's is their sum.
    copy_limits: Mutex<Vec<f64>>,
}

impl Dispatcher {
    /// A dispatcher whose strategy's zero is the `recorder`'s epoch.
    pub fn new(
        items: WorkItems,
        client: Client,
        policy: DispatchPolicy,
        cancel: CancellationToken,
        recorder: Recorder,
    ) -> Dispatcher {
        let epoch = recorder.epoch();
        Dispatcher {
            inner: Arc::new(DispatchState {
                items,
                client,
                policy,
                recorder,
                cancel,
                epoch,
                arrived: AtomicU64::new(0),
                started: AtomicU64::new(0),
                copy_limits: Mutex::new(Vec::new()),
            }),
            copy: 0,
        }
    }

    /// The view of copy `copy` of the strategy: the same items, client and recorder.
    pub fn for_copy(&self, copy: usize) -> Dispatcher {
        Dispatcher {
            inner: self.inner.clone(),
            copy,
        }
    }

    /// How many work items there are; strategies execute indices `0..len()`.
    pub fn len(&self) -> usize {
        self.inner.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.items.is_empty()
    }

    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    pub fn epoch(&self) -> Instant {
        self.inner.epoch
    }

    /// The work items, drawn anew from the first each time they are iterated.
    pub fn items(&self) -> &WorkItems {
        &self.inner.items
    }

    /// Arrived items not yet being sent.
    pub fn waiting(&self) -> u64 {
        let started = self.inner.started.load(Ordering::Acquire);
        self.inner
            .arrived
            .load(Ordering::Acquire)
            .saturating_sub(started)
    }

    fn arrived(&self) {
        self.inner.arrived.fetch_add(1, Ordering::AcqRel);
    }

    fn drop_arrival(&self, item: &WorkItem) {
        self.inner
            .recorder
            .not_sent(item, crate::recorder::Outcome::Dropped);
    }

    /// True once the run is being interrupted; strategies stop starting new work.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Completes when the run is being interrupted.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// Records the limit this copy of the strategy now has in effect; the strategy's is
    /// the sum over its copies (kept only when it changes).
    pub fn record_limit(&self, unit: LimitUnit, value: f64) {
        let total = {
            let mut limits = self
                .inner
                .copy_limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if limits.len() <= self.copy {
                limits.resize(self.copy + 1, 0.0);
            }
            limits[self.copy] = value;
            limits.iter().sum()
        };
        self.inner.recorder.limit(unit, total);
    }

    /// Sends `item` (retrying as the retry policy says), times it and records it. An
    /// interrupt ends it early and records it as cancelled; an item never executed is
    /// recorded as never sent.
    pub async fn execute(&self, item: &WorkItem) {
        // Boxed, so that the future a strategy spawns stays a few words: tokio copies a
        // task's whole future whenever it moves its stage (spawned, finished, its output
        // read), some six times per task; unboxed, each copy was ~1.2 KB.
        Box::pin(self.send(item, None)).await
    }

    /// [`Dispatcher::execute`], telling `gate` of every attempt and letting it hold
    /// back each retry.
    pub async fn execute_gated(&self, item: &WorkItem, gate: &dyn Gate) {
        Box::pin(self.send(item, Some(gate))).await
    }

    async fn send(&self, item: &WorkItem, gate: Option<&dyn Gate>) {
        let state = &*self.inner;
        state.started.fetch_add(1, Ordering::AcqRel);
        if state.cancel.is_cancelled() {
            return;
        }
        let recorder = &state.recorder;
        if !state.policy.budget.admit() {
            return recorder.not_sent(item, crate::recorder::Outcome::OverBudget);
        }
        let mut attempts = Attempts {
            first_sent: recorder.sending(),
            count: 0,
            backoff: Duration::ZERO,
        };
        let mut rng = Jitter::of(item);
        loop {
            attempts.count += 1;
            // Boxed: the client's future is most of this one's, which would
            // otherwise be copied into every spawned task and moved with it.
            // Biased: the client first, without drawing a random order at every poll.
            let exchange = tokio::select! {
                biased;
                exchange = Box::pin(state.client.send(item, recorder.gap_sink(item))) => exchange,
                _ = state.cancel.cancelled() => {
                    return recorder.cancel_in_flight(item, &attempts);
                }
            };
            if let Some(gate) = gate {
                gate.after_attempt(
                    item,
                    &Feedback::of(&exchange, state.policy.retry.max_retry_after()),
                );
            }
            let decision = state
                .policy
                .retry
                .decide(&exchange, attempts.count, &mut rng);
            let wait = match decision {
                Decision::RetryAfter(wait) if state.policy.budget.admit() => wait,
                Decision::GiveUp(why) => {
                    let mut exchange = exchange;
                    if let Some((_, message)) = &mut exchange.error {
                        message.push_str(&format!(" (not retried: {why})"));
                    }
                    return recorder.finish(item, &attempts, exchange);
                }
                _ => {
                    let answered = exchange.error.is_none();
                    if answered {
                        let policy = &state.policy;
                        policy
                            .budget
                            .spend(item.prompt_tokens, exchange.output_tokens);
                    }
                    recorder.finish(item, &attempts, exchange);
                    if answered {
                        state.policy.post_process().await;
                    }
                    return;
                }
            };
            let waited = Instant::now();
            let allowed = async {
                tokio::time::sleep(wait).await;
                if let Some(gate) = gate {
                    gate.before_retry(item).await;
                }
            };
            tokio::select! {
                // A gate's hold counts as backing off too; without one, the wait is exact.
                _ = allowed => attempts.backoff += match gate {
                    Some(_) => waited.elapsed(),
                    None => wait,
                },
                _ = state.cancel.cancelled() => {
                    return recorder.cancel_in_flight(item, &attempts);
                }
            }
        }
    }

    /// The most connections the client held at once, where its HTTP library says.
    pub fn peak_connections(&self) -> Option<u64> {
        self.inner.client.peak_connections()
    }

    /// The HTTP versions the client's responses came in.
    pub fn http_versions(&self) -> String {
        self.inner.client.http_versions()
    }

    /// What has been recorded so far.
    pub fn recording(&self) -> crate::recorder::Recording {
        self.inner.recorder.recording(&self.inner.items)
    }
}
