//! The async runtime a strategy runs on. Each strategy gets a fresh runtime of its own
//! kind on threads of its own, so no strategy inherits another's warm state, and the
//! thread counts are pinned and reported.

use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// tokio's multi-threaded work-stealing scheduler.
    #[default]
    TokioMulti,
    /// tokio on one thread: every task, and every blocking call, shares it.
    TokioCurrent,
}

impl RuntimeKind {
    /// How the runtime is described in tables: `tokio-multi (2 workers)`.
    pub fn describe(self, workers: usize) -> String {
        match self {
            RuntimeKind::TokioMulti => format!("tokio-multi ({workers} workers)"),
            RuntimeKind::TokioCurrent => "tokio-current (1 thread)".into(),
        }
    }

    /// Worker threads: `requested` for a multi-threaded runtime (default one per core),
    /// always 1 for the current-thread runtime.
    pub fn workers(self, requested: Option<usize>) -> usize {
        match self {
            RuntimeKind::TokioMulti => requested
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            RuntimeKind::TokioCurrent => 1,
        }
    }
}

/// Runs the future `make` builds to completion on a fresh runtime of `kind` with
/// `workers` threads, on a thread of its own, and returns its output.
pub async fn run_on<F, Fut, T>(kind: RuntimeKind, workers: usize, make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let runtime = match kind {
        RuntimeKind::TokioMulti => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("llmbench-strategy")
            .enable_all()
            .build()?,
        RuntimeKind::TokioCurrent => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let (done, output) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("llmbench-strategy".into())
        .spawn(move || {
            let _ = done.send(runtime.block_on(make()));
            // Connections left in the strategy's pool are dropped, not drained.
            runtime.shutdown_background();
        })?;
    output.await.map_err(|_| {
        std::io::Error::other("the strategy's runtime stopped before the strategy finished")
    })
}
