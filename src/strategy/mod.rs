//! Dispatch strategies: how the same list of work items is scheduled onto the runtime.
//!
//! A strategy decides only *when* each item is executed; [`Dispatcher::execute`] does
//! the sending, timing and recording, identically for all. Adding a strategy means one
//! file implementing [`Strategy`] plus a variant and a match arm in [`StrategyKind`].

mod join_all;
mod joinset;
mod semaphore;
mod serial;

pub use join_all::JoinAllStrategy;
pub use joinset::JoinSetStrategy;
pub use semaphore::SemaphoreStrategy;
pub use serial::SerialStrategy;

use crate::client::Client;
use crate::recorder::Recorder;
use crate::workload::WorkItem;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// A way of dispatching work items.
pub trait Strategy: Send + Sync {
    /// Executes every item of `dispatcher` once, returning when all are done.
    fn run(&self, dispatcher: Dispatcher) -> BoxFuture<'static, ()>;
}

/// The `kind` of a `[[strategy]]` entry: the registry of strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Executes work items for a strategy: cheap to clone into tasks.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<DispatchState>,
}

struct DispatchState {
    items: Arc<[WorkItem]>,
    client: Client,
    recorder: Recorder,
    cancel: CancellationToken,
    /// The strategy's start; in a batch workload every item is available from here.
    epoch: Instant,
}

impl Dispatcher {
    pub fn new(
        items: Arc<[WorkItem]>,
        client: Client,
        cancel: CancellationToken,
        epoch: Instant,
    ) -> Dispatcher {
        let recorder = Recorder::new(items.len(), epoch);
        Dispatcher {
            inner: Arc::new(DispatchState {
                items,
                client,
                recorder,
                cancel,
                epoch,
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

    /// True once the run is being interrupted; strategies stop starting new work.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends work item `slot`, times it and records it. An interrupt ends it early and
    /// records it as cancelled; an item never executed is recorded as never sent.
    pub async fn execute(&self, slot: usize) {
        let state = &*self.inner;
        let item = &state.items[slot];
        if state.cancel.is_cancelled() {
            return;
        }
        let recorder = &state.recorder;
        recorder.sending();
        let sent = Instant::now();
        tokio::select! {
            exchange = state.client.send(item, recorder.gap_sink(item)) => {
                recorder.finish(slot, item, state.epoch, exchange);
            }
            _ = state.cancel.cancelled() => {
                recorder.cancel_in_flight(slot, item, state.epoch, sent);
            }
        }
    }

    /// What has been recorded so far.
    pub fn recording(&self) -> crate::recorder::Recording {
        self.inner.recorder.recording(&self.inner.items)
    }
}
