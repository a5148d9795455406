//! `GET /metrics`: the mock's counters in Prometheus text format.
//!
//! Written by hand: a dozen fixed series need no registry, and the exposition format
//! (`# HELP`, `# TYPE`, `name{label="v"} value`) is stable and simple. Counters count
//! since the mock started or was last reset (before each strategy of a run).
//!
//! Only reads the counters; must not change them or any other state.

use super::MockState;
use super::limits::Dimension;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
