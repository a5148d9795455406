//! The embedded mock LLM server.
//!
//! It runs on its own tokio runtime on its own threads, so its timers and sockets never
//! share a scheduler with the load generator being measured. It shares nothing with the
//! client except the wire types in [`crate::wire`]; its configuration is
//! [`crate::scenario`]'s and its token buckets [`crate::quota`]'s. It imports nothing
//! else from the crate.
//!
//! This file owns the server's life (start, reset, stop), its shared state and
//! counters, and the routes. Accepting connections is `connections`'s, reading a
//! request's body within its bounds `body`'s, a request's steps `pipeline`'s, each
//! API's wire format its own file's (`openai`, `completions`, `anthropic`,
//! `responses`); prompt caching is `cache`'s; when a paced step may run `timer`'s.

mod anthropic;
mod body;
mod cache;
pub mod capacity;
mod completions;
mod connections;
pub mod faults;
mod generator;
mod http2;
pub mod limits;
mod metrics;
mod openai;
mod pipeline;
pub mod rate_limit;
mod responses;
mod stream;
mod timer;
mod write_gate;

/// Name (and prefix) of the mock's threads, so their CPU time can be told from the client's.
pub const THREAD_NAME: &str = "llmbench-mock";

use crate::scenario::MockConfig;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// A running mock server; dropping it stops the server.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<MockState>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the mock has done since the last reset. Exact counts, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)] // results saved by older versions lack the newer counters
pub struct MockStats {
    pub requests: u64,
    pub admitted: u64,
    pub rate_limited: u64,
    pub invalid: u64,
    /// Requests given an injected fault.
    pub faults: u64,
    /// Requests refused because the capacity model's queue was full.
    pub queue_full: u64,
    /// How late the mock sent streamed tokens against their schedule, in microseconds
    /// (median, 99th percentile, maximum): its own pacing error, apart from the client's.
    pub token_lateness_us: [u64; 3],
    pub output_tokens_sent: u64,
    /// TCP connections accepted and served: how well the client reuses its connections.
    #[serde(default)]
    pub connections: u64,
    /// TCP connections closed as soon as they were accepted, because `max_connections`
    /// were open.
    pub connections_refused: u64,
}

pub(crate) struct MockState {
    config: MockConfig,
    seed: u64,
    limits: limits::Limits,
    capacity: Option<Arc<capacity::Capacity>>,
    /// Prompt caching, when `[mock.cache]` is set.
    cache: Option<cache::PromptCache>,
    /// What the `vllm:` metrics report.
    serving: metrics::Serving,
    /// What paces tokens and first tokens, to tens of microseconds.
    timer: timer::PacingTimer,
    /// When paced steps wake under load, on every connection alike.
    grid: timer::WakeGrid,
    /// When the current strategy started (the last reset): the stall window's origin.
    epoch: Mutex<Instant>,
    /// Lateness of each streamed token against its deadline, in microseconds.
    lateness: Mutex<hdrhistogram::Histogram<u64>>,
    counters: Counters,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    admitted: AtomicU64,
    rate_limited: AtomicU64,
    invalid: AtomicU64,
    faults: AtomicU64,
    queue_full: AtomicU64,
    output_tokens_sent: AtomicU64,
    connections: AtomicU64,
    connections_refused: AtomicU64,
    /// Refusals by dimension (requests, tokens, input, output), then by quota.
    limited_by: [AtomicU64; 5],
}

impl Counters {
    /// The refusal counter of `dimension`; `None` is the quota's.
    fn limited(&self, dimension: Option<limits::Dimension>) -> &AtomicU64 {
        use limits::Dimension::*;
        let i = match dimension {
            Some(Requests) => 0,
            Some(Tokens) => 1,
            Some(InputTokens) => 2,
            Some(OutputTokens) => 3,
            None => 4,
        };
        &self.limited_by[i]
    }
}

impl MockServer {
    /// Starts the mock on 127.0.0.1 on an ephemeral port.
    pub fn start_local(config: MockConfig, seed: u64) -> std::io::Result<MockServer> {
        MockServer::start(
            config,
            seed,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        )
    }

    /// Binds `addr`, then serves on a dedicated runtime with `config.threads` workers.
    pub fn start(config: MockConfig, seed: u64, addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let runtime = runtime(config.threads.get())?;
        let timer = {
            let _on_runtime = runtime.enter();
            timer::PacingTimer::start()?
        };
        let now = Instant::now();
        let state = Arc::new(MockState {
            timer,
            grid: timer::WakeGrid::new(),
            limits: limits::Limits::new(config.rate_limit.clone()),
            capacity: config.capacity.clone().map(capacity::Capacity::new),
            cache: config.cache.clone().map(cache::PromptCache::new),
            serving: metrics::Serving::default(),
            config,
            seed,
            epoch: Mutex::new(now),
            lateness: Mutex::new(lateness_histogram()),
            counters: Counters::default(),
            next_id: AtomicU64::new(0),
        });
        let app = router(state.clone());
        let accepting = state.clone();
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = connections::accept(listener, app, accepting) => {}
                        _ = stop => {}
                    }
                });
                // Open streams are abandoned, not drained: the run is over.
                runtime.shutdown_background();
            })?;
        Ok(MockServer {
            addr,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refills the rate-limit buckets and zeroes the counters, so the next strategy
    /// starts from the same conditions as the first.
    pub fn reset(&self) {
        self.reset_at(Instant::now());
    }

    /// As [`MockServer::reset`], with `zero` as the origin of the stall window: the
    /// instant the caller's own clock starts, so both measure from one instant.
    pub fn reset_at(&self, zero: Instant) {
        *lock(&self.state.epoch) = zero;
        self.state.limits.reset();
        lock(&self.state.lateness).reset();
        self.state.serving.reset();
        if let Some(cache) = &self.state.cache {
            cache.reset();
        }
        let c = &self.state.counters;
        for counter in c.limited_by.iter().chain([
            &c.requests,
            &c.admitted,
            &c.rate_limited,
            &c.invalid,
            &c.faults,
            &c.queue_full,
            &c.output_tokens_sent,
            &c.connections,
            &c.connections_refused,
        ]) {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> MockStats {
        let c = &self.state.counters;
        MockStats {
            requests: c.requests.load(Ordering::Relaxed),
            admitted: c.admitted.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            invalid: c.invalid.load(Ordering::Relaxed),
            faults: c.faults.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            token_lateness_us: self.state.lateness_quantiles(),
            output_tokens_sent: c.output_tokens_sent.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            connections_refused: c.connections_refused.load(Ordering::Relaxed),
        }
    }
}

/// The mock's runtime. On one thread it is tokio's current-thread runtime, which runs
/// woken tasks in the order they were woken: the streams whose tokens fall due together
/// all queue their HTTP/2 frames before their connection's task runs, and it writes them
/// in one `write`. A multi-thread runtime's LIFO slot runs the task woken last first, so
/// the connection's task could run after each stream's, one write per token.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder.thread_name(THREAD_NAME).enable_all().build()
}

/// Connections the kernel may hold for the mock before it accepts them. std's default
/// (128) overflows when a strategy opens hundreds at once: the excess SYNs are dropped
/// and retried a second later, which would show up as a 1 s TTFT the mock never caused.
/// (The kernel caps it at `net.core.somaxconn`.)
const ACCEPT_BACKLOG: i32 = 8192;

/// Token lateness in microseconds, 3 significant digits, exact up to an hour.
fn lateness_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds are valid")
}

fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(ACCEPT_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl MockState {
    /// Waits for a step due at `at`: until the wake-up grid's next point.
    async fn sleep_on_grid(&self, at: Instant) {
        let sent = self.counters.output_tokens_sent.load(Ordering::Relaxed);
        self.timer.sleep_until(self.grid.wake_at(at, sent)).await;
    }

    /// The wake-up grid's spacing now (zero when the mock sends too little for one).
    fn grid_spacing(&self) -> std::time::Duration {
        self.grid
            .spacing(self.counters.output_tokens_sent.load(Ordering::Relaxed))
    }

    /// Admits (or refuses) a request through the dimensions its API meters; `None`
    /// when no limit is configured. Counts refusals.
    fn admit(
        &self,
        key: &str,
        dimensions: &[limits::Dimension],
        charge: limits::Charge,
    ) -> Option<(limits::Admission, Vec<limits::Reading>)> {
        if !self.limits.any() {
            return None;
        }
        let (admission, readings) = self.limits.admit(key, dimensions, charge);
        let refused_by = match &admission {
            limits::Admission::Admitted => None,
            limits::Admission::Limited(limited) => Some(Some(limited.dimension)),
            limits::Admission::QuotaExhausted => Some(None),
        };
        if let Some(dimension) = refused_by {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            self.counters
                .limited(dimension)
                .fetch_add(1, Ordering::Relaxed);
        }
        Some((admission, readings))
    }

    /// What a request's prompt reads from the cache; `None` without `[mock.cache]`.
    fn cache_lookup(&self, request: &pipeline::ParsedRequest) -> Option<cache::CacheUsage> {
        let cache = self.cache.as_ref()?;
        Some(cache.lookup(&request.prompt_tokens, self.seed))
    }

    /// Counts an admitted request, and caches its prompt's prefixes.
    fn admitted(&self, prompt: &cache::PromptTokens) {
        self.counters.admitted.fetch_add(1, Ordering::Relaxed);
        self.serving.add_prompt_tokens(prompt.tokens());
        if let Some(cache) = &self.cache {
            cache.store(prompt);
        }
    }

    /// Records how late a token went out against its deadline.
    fn record_lateness(&self, late: std::time::Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        lock(&self.lateness).saturating_record(micros);
    }

    /// Median, 99th percentile and maximum token lateness, in microseconds.
    fn lateness_quantiles(&self) -> [u64; 3] {
        let h = lock(&self.lateness);
        [h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()]
    }

    /// The pacing of an admitted response, or the status to refuse it with when the
    /// capacity model's queue is full.
    fn pacing(&self, prompt_tokens: u32) -> Result<capacity::Pacing, u16> {
        let Some(capacity) = &self.capacity else {
            return Ok(capacity::Pacing::unlimited());
        };
        capacity::Pacing::queued(capacity, prompt_tokens).inspect_err(|_| {
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// `retry-after` (whole seconds) and, if configured, `retry-after-ms` for a refusal.
    fn retry_headers(&self, headers: &mut axum::http::HeaderMap, wait: std::time::Duration) {
        insert(
            headers,
            "retry-after",
            rate_limit::retry_after_seconds(wait).to_string(),
        );
        if self.limits.retry_after_ms() {
            insert(
                headers,
                "retry-after-ms",
                (wait.as_secs_f64() * 1000.0).ceil().to_string(),
            );
        }
    }

    /// A fresh request id, and the request counted.
    fn next_request(&self) -> u64 {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The fault for a request: forced by its header, else drawn. A whole (non-streamed)
    /// response has no events, so an error event becomes a 500. `Err` is the message
    /// for an unknown header value.
    fn fault_for(
        &self,
        headers: &axum::http::HeaderMap,
        plan: &generator::CompletionPlan,
        stream: bool,
    ) -> Result<Option<faults::Fault>, String> {
        let forced = headers.get(faults::FAULT_HEADER).map(|v| {
            v.to_str()
                .map_err(|_| "x-llmbench-fault is not text".to_string())?
                .parse()
        });
        let fault = match forced {
            Some(parsed) => Some(parsed?),
            None => self.config.faults.pick(plan.fault_roll),
        };
        if fault.is_some() {
            self.counters.faults.fetch_add(1, Ordering::Relaxed);
        }
        Ok(fault.map(|f| match f {
            faults::Fault::ErrorEvent if !stream => faults::Fault::Status(500),
            f => f,
        }))
    }

    /// When a request received now may be answered: the end of the stall window if it
    /// falls inside it.
    fn stalled_until(&self) -> Option<Instant> {
        let stall = self.config.stall?;
        let start = *lock(&self.epoch) + std::time::Duration::from_secs_f64(stall.at_s.0);
        let end = start + std::time::Duration::from_secs_f64(stall.duration_s.0);
        let now = Instant::now();
        (start <= now && now < end).then_some(end)
    }
}

/// The routes. Request bodies are read by the pipeline (`body`), not by axum's
/// extractors, whose size limit reads a body before refusing it.
fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(completions::routes())
        .merge(anthropic::routes())
        .merge(responses::routes())
        .route("/v1/models", axum::routing::get(models))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/health", axum::routing::get(|| async { "ok" }))
        .with_state(state)
}

/// The configured models, in Anthropic's list format when the request carries an
/// `anthropic-version` header (as Anthropic's SDKs send), else in OpenAI's.
async fn models(
    axum::extract::State(state): axum::extract::State<Arc<MockState>>,
    headers: axum::http::HeaderMap,
) -> axum::Json<serde_json::Value> {
    let ids = &state.config.models;
    axum::Json(if headers.contains_key("anthropic-version") {
        anthropic::model_list(ids)
    } else {
        openai::model_list(ids)
    })
}

/// Sets a response header from a computed value (values that cannot be header text
/// are left out rather than failing the response).
fn insert(headers: &mut axum::http::HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = axum::http::HeaderValue::try_from(value) {
        headers.insert(axum::http::HeaderName::from_static(name), value);
    }
}

/// As [`insert`], for a header name computed at run time.
fn insert_named(headers: &mut axum::http::HeaderMap, name: String, value: String) {
    if let (Ok(name), Ok(value)) = (
        axum::http::HeaderName::try_from(name),
        axum::http::HeaderValue::try_from(value),
    ) {
        headers.insert(name, value);
    }
}

/// A poisoned lock only means another request panicked mid-update of a bucket; its
/// numbers are still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
