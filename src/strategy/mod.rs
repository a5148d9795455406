//! Dispatch strategies: how the same list of work items is scheduled onto the runtime.
//!
//! Work items arrive on a schedule ([`Arrivals`]); a strategy decides only *when* each
//! arrived item is sent, and [`Dispatcher::execute`] does the sending, timing and
//! recording, identically for all. Adding a strategy means one file implementing
//! [`Strategy`] plus a variant of the scenario's `StrategyKind` and its arm in
//! [`StrategyKind::build`].
//!
//! Above the client, recorder, retry and budget, which it drives; below the runner.

mod arrivals;
mod join_all;
mod joinset;
mod semaphore;
mod serial;

pub use arrivals::Arrivals;
pub use join_all::JoinAllStrategy;
pub use joinset::JoinSetStrategy;
pub use semaphore::SemaphoreStrategy;
pub use serial::SerialStrategy;

use crate::budget::Budget;
use crate::client::Client;
use crate::recorder::{Attempts, RecordSink, Recorder};
use crate::retry::Decision;
use crate::scenario::{RetryConfig, StrategyKind};
use crate::workload::WorkItem;
use futures_util::future::BoxFuture;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A way of dispatching work items.
pub trait Strategy: Send + Sync {
    /// Executes every item that `arrivals` yields, once, returning when all are done.
    /// Items wait (and are recorded as waiting) until the strategy sends them.
    fn run(&self, dispatcher: Dispatcher, arrivals: Arrivals) -> BoxFuture<'static, ()>;
}

impl StrategyKind {
    /// Builds the strategy; `limit` is present exactly when [`Self::takes_limit`].
    pub fn build(self, limit: Option<usize>) -> Box<dyn Strategy> {
        let limit = limit.unwrap_or(1);
        match self {
            StrategyKind::Serial => Box::new(SerialStrategy),
            StrategyKind::JoinAll => Box::new(JoinAllStrategy),
            StrategyKind::Semaphore => Box::new(SemaphoreStrategy { limit }),
            StrategyKind::JoinSet => Box::new(JoinSetStrategy { limit }),
        }
    }
}

/// How the dispatcher treats each request, besides sending it.
pub struct DispatchPolicy {
    pub retry: RetryConfig,
    pub budget: Arc<Budget>,
    /// CPU time spent after each answered response (simulated post-processing).
    pub cpu_work: Duration,
    /// Spend it with `spawn_blocking`, off the runtime's threads.
    pub offload: bool,
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

/// Executes work items for a strategy: cheap to clone into tasks.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<DispatchState>,
}

struct DispatchState {
    items: Arc<[WorkItem]>,
    client: Client,
    policy: DispatchPolicy,
    recorder: Recorder,
    cancel: CancellationToken,
    /// The strategy's start: item `i` is due at `epoch + items[i].at`.
    epoch: Instant,
    /// Items released by the pacer, and items whose sending has begun: the difference
    /// is the client-side queue.
    arrived: AtomicU64,
    started: AtomicU64,
}

impl Dispatcher {
    pub fn new(
        items: Arc<[WorkItem]>,
        client: Client,
        policy: DispatchPolicy,
        cancel: CancellationToken,
        (epoch, sink): (Instant, Arc<dyn RecordSink>),
    ) -> Dispatcher {
        let recorder = Recorder::new(items.len(), epoch, sink);
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
            }),
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

    pub fn item(&self, slot: usize) -> &WorkItem {
        &self.inner.items[slot]
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

    fn drop_arrival(&self, slot: usize) {
        let item = &self.inner.items[slot];
        self.inner
            .recorder
            .not_sent(slot, item, crate::recorder::Outcome::Dropped);
    }

    /// True once the run is being interrupted; strategies stop starting new work.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends work item `slot` (retrying as the retry policy says), times it and records
    /// it. An interrupt ends it early and records it as cancelled; an item never
    /// executed is recorded as never sent.
    pub async fn execute(&self, slot: usize) {
        let state = &*self.inner;
        state.started.fetch_add(1, Ordering::AcqRel);
        let item = &state.items[slot];
        if state.cancel.is_cancelled() {
            return;
        }
        let recorder = &state.recorder;
        if !state.policy.budget.admit() {
            return recorder.not_sent(slot, item, crate::recorder::Outcome::OverBudget);
        }
        recorder.sending();
        let mut attempts = Attempts {
            first_sent: Instant::now(),
            count: 0,
            backoff: Duration::ZERO,
        };
        // Jitter drawn per item, so a rerun retries on the same schedule.
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(item.index));
        loop {
            attempts.count += 1;
            let exchange = tokio::select! {
                exchange = state.client.send(item, recorder.gap_sink(item)) => exchange,
                _ = state.cancel.cancelled() => {
                    return recorder.cancel_in_flight(slot, item, attempts.first_sent);
                }
            };
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
                    return recorder.finish(slot, item, &attempts, exchange);
                }
                _ => {
                    let answered = exchange.error.is_none();
                    if answered {
                        let policy = &state.policy;
                        policy
                            .budget
                            .spend(item.prompt_tokens, exchange.output_tokens);
                    }
                    recorder.finish(slot, item, &attempts, exchange);
                    if answered {
                        state.policy.post_process().await;
                    }
                    return;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => attempts.backoff += wait,
                _ = state.cancel.cancelled() => {
                    return recorder.cancel_in_flight(slot, item, attempts.first_sent);
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
