//! The async runtime a strategy runs on. Each strategy gets a fresh runtime of its own
//! kind on threads of its own, so no strategy inherits another's warm state, and the
//! thread counts are pinned and reported.
//!
//! Builds runtimes, and measures their health while a strategy runs on them (`health`:
//! a lag probe on every runtime, and the CPU of the threads that poll its tasks), and
//! what the probe itself costs an idle runtime ([`probe_idle_cost`]); the strategies and
//! the client run on them unaware of which.

mod health;

pub use health::{PROBE_PERIOD, RuntimeHealth};

use crate::client::Sockets;
use crate::scenario::RuntimeKind;
use health::{RuntimeThreads, probed};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Setting this environment variable makes llmbench treat io_uring as unavailable, to
/// show (and test) how a run without it reports its tokio-uring strategies.
pub const DISABLE_IO_URING_ENV: &str = "LLMBENCH_DISABLE_IO_URING";

/// The names of a strategy runtime's threads: the one that starts it (and polls the
/// strategy's root task), a tokio-multi runtime's workers, and the blocking pool's.
const STARTER_THREAD: &str = "llmbench-strategy";
const WORKER_THREAD: &str = "llmbench-worker";
const BLOCKING_THREAD: &str = "llmbench-blocking";

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
/// `workers` threads, on a thread of its own, with the lag probe beside it, and returns
/// its output and the runtime's health.
pub async fn run_on<F, Fut, T>(
    kind: RuntimeKind,
    workers: usize,
    make: F,
) -> std::io::Result<(T, RuntimeHealth)>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (done, output) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new().name(STARTER_THREAD.into());
    thread.spawn(move || {
        let _ = done.send(block_on(kind, workers, make));
    })?;
    output.await.map_err(|_| {
        std::io::Error::other("the strategy's runtime stopped before the strategy finished")
    })?
}

/// How long [`probe_idle_cost`] watches idle runtimes: a short and a long watch, whose
/// difference is 50 of the probe's wake-ups.
const SHORT_WATCH: std::time::Duration = std::time::Duration::from_millis(10);
const LONG_WATCH: std::time::Duration = std::time::Duration::from_millis(60);

/// The CPU time one wake-up of the lag probe costs a fresh runtime of `kind` with
/// `workers` threads that has nothing else to do, as hyperfine measures its shell's
/// start-up apart, so that a strategy's CPU per request is its own
/// ([`health::RuntimeHealth::probe_cpu`]). Two fresh runtimes idle for a short and a
/// long watch ([`SHORT_WATCH`], [`LONG_WATCH`]); the difference of their threads' CPU time over the
/// difference of their wake-ups leaves out what a fresh runtime costs at first (its
/// threads' start, their stacks' first touch). `None` where the runtime cannot start or
/// thread clocks cannot be read.
pub async fn probe_idle_cost(kind: RuntimeKind, workers: usize) -> Option<std::time::Duration> {
    // The threads' CPU time and the probe's wake-ups over `watch` of idling.
    let idle_for = |watch| async move {
        // A sleep made inside the runtime: `make` is called before the runtime is entered.
        let idle = move || async move { tokio::time::sleep(watch).await };
        let ((), health) = run_on(kind, workers, idle).await.ok()?;
        Some((health.cpu?, health.lag.len()))
    };
    let (short_cpu, short_wakes) = idle_for(SHORT_WATCH).await?;
    let (long_cpu, long_wakes) = idle_for(LONG_WATCH).await?;
    let wakes = u32::try_from(long_wakes.checked_sub(short_wakes)?).ok()?;
    long_cpu.checked_sub(short_cpu)?.checked_div(wakes)
}

/// Builds the runtime on the calling thread (a tokio-uring runtime cannot move between
/// threads) and runs the future on it, probed.
fn block_on<F, Fut, T>(
    kind: RuntimeKind,
    workers: usize,
    make: F,
) -> std::io::Result<(T, RuntimeHealth)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let threads = RuntimeThreads::default();
    let tokio = match kind {
        RuntimeKind::TokioMulti => multi_thread(workers.max(1), threads.clone())?,
        RuntimeKind::TokioCurrent => tokio::runtime::Builder::new_current_thread()
            .thread_name(BLOCKING_THREAD)
            .enable_all()
            .build()?,
        RuntimeKind::TokioUring => return uring_block_on(make, threads),
    };
    // The strategy's loops are tasks on the workers (the calling thread only waits
    // for them); and the threads can use no more cores than the process may run on
    // (its CPU affinity, `taskset`, or a container's quota), or a client pinned to one
    // core would never look saturated.
    let threads_of_kind = match kind {
        RuntimeKind::TokioMulti => workers.max(1),
        RuntimeKind::TokioCurrent | RuntimeKind::TokioUring => 1,
    };
    let cores = std::thread::available_parallelism().map_or(threads_of_kind, |n| n.get());
    let capacity = threads_of_kind.min(cores);
    let output = tokio.block_on(probed(make(), threads, capacity));
    // Connections left in the strategy's pool are dropped, not drained.
    tokio.shutdown_background();
    Ok(output)
}

/// A multi-threaded runtime whose workers register in `threads` as they start. tokio
/// starts its workers while building the runtime, before any blocking-pool thread, so
/// the first `workers` threads it names are the workers.
fn multi_thread(
    workers: usize,
    threads: RuntimeThreads,
) -> std::io::Result<tokio::runtime::Runtime> {
    let named = AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name_fn(
            move || match named.fetch_add(1, Ordering::Relaxed) < workers {
                true => WORKER_THREAD.into(),
                false => BLOCKING_THREAD.into(),
            },
        )
        .on_thread_start(move || {
            if std::thread::current().name() == Some(WORKER_THREAD) {
                threads.register_current();
            }
        })
        .enable_all()
        .build()
}

#[cfg(target_os = "linux")]
fn uring_block_on<F, Fut, T>(
    make: F,
    threads: RuntimeThreads,
) -> std::io::Result<(T, RuntimeHealth)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio_uring::Runtime::new(tokio_uring::builder().entries(URING_ENTRIES))?;
    Ok(runtime.block_on(async {
        crate::client::transport::uring::serve_dials();
        probed(make(), threads, 1).await
    }))
}

#[cfg(not(target_os = "linux"))]
fn uring_block_on<F, Fut, T>(
    _make: F,
    _threads: RuntimeThreads,
) -> std::io::Result<(T, RuntimeHealth)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    Err(std::io::Error::other("io_uring needs Linux"))
}
