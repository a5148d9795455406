//! The async runtime a strategy runs on. Each strategy gets a fresh runtime of its own
//! kind on threads of its own, so no strategy inherits another's warm state, and the
//! thread counts are pinned and reported.
//!
//! Builds runtimes only; the strategies and the client run on them unaware of which.

use crate::client::Sockets;
use crate::scenario::RuntimeKind;
use std::future::Future;

/// Setting this environment variable makes llmbench treat io_uring as unavailable, to
/// show (and test) how a run without it reports its tokio-uring strategies.
pub const DISABLE_IO_URING_ENV: &str = "LLMBENCH_DISABLE_IO_URING";

/// Submission queue entries of a tokio-uring runtime: enough for every in-flight read
/// and write of a few hundred streams between two submissions.
#[cfg(target_os = "linux")]
const URING_ENTRIES: u32 = 1024;

impl RuntimeKind {
    /// How the runtime is described in tables: `tokio-multi (2 workers)`.
    pub fn describe(self, workers: usize) -> String {
        match self {
            RuntimeKind::TokioMulti => format!("tokio-multi ({workers} workers)"),
            RuntimeKind::TokioCurrent => "tokio-current (1 thread)".into(),
            RuntimeKind::TokioUring => "tokio-uring (1 thread)".into(),
        }
    }

    /// Worker threads: `requested` for a multi-threaded runtime (default one per core),
    /// always 1 for the single-threaded ones.
    pub fn workers(self, requested: Option<usize>) -> usize {
        match self {
            RuntimeKind::TokioMulti => requested
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            RuntimeKind::TokioCurrent | RuntimeKind::TokioUring => 1,
        }
    }

    /// The sockets an HTTP client on this runtime uses.
    pub fn sockets(self) -> Sockets {
        match self {
            RuntimeKind::TokioUring => Sockets::IoUring,
            RuntimeKind::TokioMulti | RuntimeKind::TokioCurrent => Sockets::Tokio,
        }
    }

    /// Why this runtime cannot start on this machine, if it cannot; such a strategy is
    /// skipped and the run goes on.
    pub fn unavailable(self) -> Option<String> {
        match self {
            RuntimeKind::TokioUring => io_uring_unavailable(),
            RuntimeKind::TokioMulti | RuntimeKind::TokioCurrent => None,
        }
    }
}

/// Why io_uring cannot be used here, found by setting up a small ring.
fn io_uring_unavailable() -> Option<String> {
    if std::env::var_os(DISABLE_IO_URING_ENV).is_some() {
        return Some(format!("io_uring is turned off by {DISABLE_IO_URING_ENV}"));
    }
    #[cfg(target_os = "linux")]
    let probe = tokio_uring::uring_builder().build(8).map(drop);
    #[cfg(not(target_os = "linux"))]
    let probe: std::io::Result<()> = Err(std::io::Error::other("it needs Linux"));
    probe.err().map(|e| {
        format!(
            "io_uring is not available here ({e}); it needs Linux 5.11 or later, and container seccomp profiles often block it"
        )
    })
}

/// Runs the future `make` builds to completion on a fresh runtime of `kind` with
/// `workers` threads, on a thread of its own, and returns its output.
pub async fn run_on<F, Fut, T>(kind: RuntimeKind, workers: usize, make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (done, output) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new().name("llmbench-strategy".into());
    thread.spawn(move || {
        let _ = done.send(block_on(kind, workers, make));
    })?;
    output.await.map_err(|_| {
        std::io::Error::other("the strategy's runtime stopped before the strategy finished")
    })?
}

/// Builds the runtime on the calling thread (a tokio-uring runtime cannot move between
/// threads) and runs the future on it.
fn block_on<F, Fut, T>(kind: RuntimeKind, workers: usize, make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let tokio = match kind {
        RuntimeKind::TokioMulti => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("llmbench-strategy")
            .enable_all()
            .build()?,
        RuntimeKind::TokioCurrent => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        RuntimeKind::TokioUring => return uring_block_on(make),
    };
    let output = tokio.block_on(make());
    // Connections left in the strategy's pool are dropped, not drained.
    tokio.shutdown_background();
    Ok(output)
}

#[cfg(target_os = "linux")]
fn uring_block_on<F, Fut, T>(make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio_uring::Runtime::new(tokio_uring::builder().entries(URING_ENTRIES))?;
    Ok(runtime.block_on(async {
        crate::client::transport::uring::serve_dials();
        make().await
    }))
}

#[cfg(not(target_os = "linux"))]
fn uring_block_on<F, Fut, T>(_make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    Err(std::io::Error::other("io_uring needs Linux"))
}
