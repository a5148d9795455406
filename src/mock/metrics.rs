//! `GET /metrics`: the mock's counters in Prometheus text format, and beside them the
//! `vllm:` series vLLM serves (requests running and waiting, token counters, histograms
//! of time to first token, inter-token latency and end-to-end latency), so dashboards
//! built for vLLM read the mock.
//!
//! Written by hand: a dozen fixed series need no registry, and the exposition format
//! (`# HELP`, `# TYPE`, `name{label="v"} value`) is stable and simple. Counters count
//! since the mock started or was last reset (before each strategy of a run).
//!
//! Only reads the counters, except the `vllm:` histograms' own, which it keeps as
//! responses are rendered (see [`Running::step`]).

use super::MockState;
use super::limits::Dimension;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(super) async fn metrics(State(state): State<Arc<MockState>>) -> impl IntoResponse {
    let c = &state.counters;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut series = |name: &str, kind: &str, help: &str, values: &[(&str, u64)]| {
        let _ = writeln!(
            out,
            "# HELP llmbench_mock_{name} {help}\n# TYPE llmbench_mock_{name} {kind}"
        );
        for (labels, value) in values {
            let _ = writeln!(out, "llmbench_mock_{name}{labels} {value}");
        }
    };
    series(
        "requests_total",
        "counter",
        "Requests received.",
        &[("", load(&c.requests))],
    );
    series(
        "admitted_total",
        "counter",
        "Requests admitted past the rate limits.",
        &[("", load(&c.admitted))],
    );
    let limited: Vec<(String, u64)> = [
        (Dimension::Requests, "requests"),
        (Dimension::Tokens, "tokens"),
        (Dimension::InputTokens, "input_tokens"),
        (Dimension::OutputTokens, "output_tokens"),
    ]
    .into_iter()
    .map(|(d, label)| {
        (
            format!("{{dimension=\"{label}\"}}"),
            load(c.limited(Some(d))),
        )
    })
    .chain([("{dimension=\"quota\"}".to_string(), load(c.limited(None)))])
    .collect();
    let limited: Vec<(&str, u64)> = limited.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    series(
        "rate_limited_total",
        "counter",
        "Requests refused with 429 by a rate limit or the quota, by the dimension that refused.",
        &limited,
    );
    series(
        "queue_full_total",
        "counter",
        "Requests refused because the capacity queue was full.",
        &[("", load(&c.queue_full))],
    );
    series(
        "faults_total",
        "counter",
        "Requests given an injected fault.",
        &[("", load(&c.faults))],
    );
    series(
        "invalid_total",
        "counter",
        "Requests refused as invalid (400, 408, 413).",
        &[("", load(&c.invalid))],
    );
    series(
        "output_tokens_total",
        "counter",
        "Output tokens sent.",
        &[("", load(&c.output_tokens_sent))],
    );
    series(
        "connections_total",
        "counter",
        "TCP connections accepted and served.",
        &[("", load(&c.connections))],
    );
    series(
        "connections_refused_total",
        "counter",
        "TCP connections closed at once because max_connections were open.",
        &[("", load(&c.connections_refused))],
    );
    let (queued, decoding) = state
        .capacity
        .as_ref()
        .map_or((0, 0), |cap| (cap.queued() as u64, cap.running() as u64));
    series(
        "queue_depth",
        "gauge",
        "Requests waiting for a decode slot.",
        &[("", queued)],
    );
    series(
        "decoding",
        "gauge",
        "Sequences decoding now.",
        &[("", decoding)],
    );
    let [p50, p99, max] = state.lateness_quantiles();
    let seconds = |us: u64| us as f64 / 1e6;
    let _ = writeln!(
        out,
        "# HELP llmbench_mock_token_lateness_seconds How late streamed tokens went out against their schedule.\n\
         # TYPE llmbench_mock_token_lateness_seconds summary\n\
         llmbench_mock_token_lateness_seconds{{quantile=\"0.5\"}} {}\n\
         llmbench_mock_token_lateness_seconds{{quantile=\"0.99\"}} {}\n\
         llmbench_mock_token_lateness_seconds{{quantile=\"1\"}} {}",
        seconds(p50),
        seconds(p99),
        seconds(max)
    );
    vllm_series(&state, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// What vLLM's `/metrics` reports of its serving, kept for the `vllm:` series: requests
/// running, prompt tokens admitted, and histograms of streamed responses' time to first
/// token and gaps, and of every response's end-to-end latency (from its arrival).
pub(super) struct Serving {
    /// Admitted responses not yet ended (a gauge: not reset).
    running: AtomicU64,
    prompt_tokens: AtomicU64,
    ttft: Buckets,
    itl: Buckets,
    e2e: Buckets,
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            running: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            ttft: Buckets::new(TTFT_BUCKETS),
            itl: Buckets::new(ITL_BUCKETS),
            e2e: Buckets::new(E2E_BUCKETS),
        }
    }
}

impl Serving {
    /// Zeroes the counters and histograms; the running gauge is the present, kept.
    pub fn reset(&self) {
        self.prompt_tokens.store(0, Ordering::Relaxed);
        for buckets in [&self.ttft, &self.itl, &self.e2e] {
            buckets.reset();
        }
    }

    pub fn add_prompt_tokens(&self, tokens: u32) {
        self.prompt_tokens
            .fetch_add(u64::from(tokens), Ordering::Relaxed);
    }
}

/// vLLM's bucket bounds (seconds) for each histogram, so its dashboards' quantiles read
/// the same.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A Prometheus histogram: a count per bucket (the last for +Inf), the sum and count.
/// Written here: three fixed histograms need no registry (see the module's note).
struct Buckets {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Buckets {
    fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: Duration) {
        self.observe_n(value, 1);
    }

    /// Observes `value` `n` times.
    fn observe_n(&self, value: Duration, n: u32) {
        let seconds = value.as_secs_f64();
        let i = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[i].fetch_add(u64::from(n), Ordering::Relaxed);
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns
            .fetch_add(ns.saturating_mul(u64::from(n)), Ordering::Relaxed);
    }

    fn reset(&self) {
        for count in self.counts.iter().chain([&self.sum_ns]) {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// `name_bucket{…,le="…"}` cumulative, then `name_sum` and `name_count`.
    fn write(&self, out: &mut String, name: &str, labels: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map_or("+Inf".into(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {cumulative}"
        );
    }
}

/// One admitted response while it runs: counted as running until dropped. A streamed
/// one observes the first token's time from arrival and every gap after it (per choice:
/// each is a sequence of its own, as vLLM counts them), when its tokens are rendered,
/// just before their write; and its end.
pub(super) struct Running {
    state: Arc<MockState>,
    received: tokio::time::Instant,
    /// When the last step's tokens were rendered: every choice still generating has a
    /// token in every step, so it is each one's last token.
    last_step: Option<tokio::time::Instant>,
}

impl Running {
    pub fn start(state: &Arc<MockState>, received: tokio::time::Instant) -> Running {
        state.serving.running.fetch_add(1, Ordering::Relaxed);
        Running {
            state: state.clone(),
            received,
            last_step: None,
        }
    }

    /// A step rendered `tokens` tokens (one per choice still generating) at `now`.
    pub fn step(&mut self, now: tokio::time::Instant, tokens: u32) {
        let serving = &self.state.serving;
        match self.last_step.replace(now) {
            Some(last) => serving.itl.observe_n(now - last, tokens),
            None => serving.ttft.observe(now - self.received),
        }
    }

    /// The response has ended: its end-to-end latency is observed.
    pub fn ended(&self) {
        self.state.serving.e2e.observe(self.received.elapsed());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.state.serving.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The series vLLM's dashboards read, labelled with the first configured model's name.
fn vllm_series(state: &MockState, out: &mut String) {
    let serving = &state.serving;
    let c = &state.counters;
    let model = state.config.models.first().map_or("", String::as_str);
    let labels = format!("model_name=\"{}\"", model.replace(['"', '\\', '\n'], "_"));
    let running_now = serving.running.load(Ordering::Relaxed);
    let (running, waiting, usage) = match &state.capacity {
        Some(cap) => {
            let slots = state
                .config
                .capacity
                .as_ref()
                .map_or(1, |c| c.max_concurrent.get());
            let running = cap.running() as u64;
            (
                running,
                cap.queued() as u64,
                running as f64 / slots.max(1) as f64,
            )
        }
        None => (running_now, 0, 0.0),
    };
    let mut gauge = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP vllm:{name} {help}\n# TYPE vllm:{name} {kind}\nvllm:{name}{{{labels}}} {value}"
        );
    };
    gauge(
        "num_requests_running",
        "gauge",
        "Requests generating now (with a capacity model, those holding a decode slot).",
        running.to_string(),
    );
    gauge(
        "num_requests_waiting",
        "gauge",
        "Requests waiting for a decode slot (0 without a capacity model).",
        waiting.to_string(),
    );
    gauge(
        "kv_cache_usage_perc",
        "gauge",
        "A proxy: the share of decode slots in use (0 without a capacity model).",
        usage.to_string(),
    );
    gauge(
        "prompt_tokens_total",
        "counter",
        "Prompt tokens of admitted requests.",
        serving.prompt_tokens.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "generation_tokens_total",
        "counter",
        "Output tokens sent.",
        c.output_tokens_sent.load(Ordering::Relaxed).to_string(),
    );
    serving.ttft.write(
        out,
        "vllm:time_to_first_token_seconds",
        &labels,
        "Time from arrival to the first token, of streamed responses.",
    );
    serving.itl.write(
        out,
        "vllm:inter_token_latency_seconds",
        &labels,
        "Gaps between a streamed response's tokens.",
    );
    serving.e2e.write(
        out,
        "vllm:e2e_request_latency_seconds",
        &labels,
        "Time from arrival to the end of the response.",
    );
}
