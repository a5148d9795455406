//! The record of one request: timestamps relative to the strategy's start, status,
//! tokens and outcome. Latencies are derived from the timestamps, never stored twice.

use crate::client::ErrorClass;
use crate::scenario::{Positive, SloConfig};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed(ErrorClass),
    /// The run was interrupted before this request finished (or was sent).
    Cancelled,
    /// Never sent: it arrived while the strategy's queue (`max_queue`) was full.
    Dropped,
    /// Never sent: the run's `[budget]` was spent.
    OverBudget,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed(class) => class.as_str(),
            Outcome::Cancelled => "cancelled",
            Outcome::Dropped => "dropped",
            Outcome::OverBudget => "over_budget",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub index: u32,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// When the work item became available to the strategy.
    pub intended: Duration,
    /// When the first attempt was handed to the HTTP client; `None` if it never was.
    pub sent: Option<Duration>,
    /// When the last attempt was sent (the same as `sent` without retries).
    pub attempt_sent: Option<Duration>,
    /// When the first non-empty content chunk arrived (streaming only).
    pub first_token: Option<Duration>,
    /// When the last byte arrived, or the request failed.
    pub end: Option<Duration>,
    pub status: Option<u16>,
    pub output_tokens: u32,
    /// Non-empty content chunks received (streaming); each after the first gave one
    /// inter-token latency sample.
    pub content_chunks: u32,
    /// Where `output_tokens` came from: the server's usage, or counted from the stream
    /// when the server reported none.
    pub tokens_counted: bool,
    /// Prompt tokens the server read from its cache (its usage says).
    pub cached_tokens: u32,
    pub outcome: Outcome,
    pub attempts: u32,
    /// Time spent waiting between attempts.
    pub backoff: Duration,
    /// The error's message, for failed requests.
    pub error: Option<String>,
    /// How long the last attempt waited for a connection to be opened (TCP, TLS and
    /// HTTP handshakes); `None` when it took one already open, or the HTTP library does
    /// not say (reqwest).
    pub connect: Option<Duration>,
}

impl RequestRecord {
    /// Never sent: the run was interrupted first.
    pub fn unsent(item: &crate::workload::WorkItem) -> RequestRecord {
        RequestRecord {
            index: item.index,
            prompt_tokens: item.prompt_tokens,
            max_tokens: item.max_tokens,
            intended: item.at,
            sent: None,
            attempt_sent: None,
            first_token: None,
            end: None,
            status: None,
            output_tokens: 0,
            content_chunks: 0,
            tokens_counted: false,
            cached_tokens: 0,
            outcome: Outcome::Cancelled,
            attempts: 0,
            backoff: Duration::ZERO,
            error: None,
            connect: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// End-to-end latency: first attempt sent → last byte, spanning every attempt.
    pub fn e2e(&self) -> Option<Duration> {
        Some(self.end?.saturating_sub(self.sent?))
    }

    /// Intended start → last byte: the latency the caller experiences, including the
    /// wait for the strategy to send (corrected for coordinated omission).
    pub fn e2e_corrected(&self) -> Option<Duration> {
        Some(self.end?.saturating_sub(self.intended))
    }

    /// Intended start → first non-empty content chunk.
    pub fn ttft_corrected(&self) -> Option<Duration> {
        Some(self.first_token?.saturating_sub(self.intended))
    }

    /// Intended start → sent.
    pub fn dispatch_delay(&self) -> Option<Duration> {
        Some(self.sent?.saturating_sub(self.intended))
    }

    /// Time to first token, of the attempt that produced it: that attempt's send →
    /// first non-empty content chunk.
    pub fn ttft(&self) -> Option<Duration> {
        Some(self.first_token?.saturating_sub(self.attempt_sent?))
    }

    /// Time per output token after the first: (E2E − TTFT) / (output tokens − 1), as vLLM
    /// defines it; needs at least two tokens.
    pub fn tpot(&self) -> Option<Duration> {
        if self.output_tokens < 2 {
            return None;
        }
        let decode = self.e2e()?.saturating_sub(self.ttft()?);
        Some(decode / (self.output_tokens - 1))
    }

    /// Whether it succeeded with its own TTFT, E2E (from its send and from its intended
    /// start) and time per output token within `slo`'s p99 limits: a per-request reading
    /// of them, what a capacity search's goodput counts. Judged on its times in whole
    /// microseconds, as `requests.csv` keeps them, so that the file recounts it exactly.
    pub fn meets(&self, slo: &SloConfig) -> bool {
        let within = |limit: Option<Positive>, value: Option<Duration>| {
            limit.is_none_or(|l| value.is_some_and(|v| v.as_secs_f64() * 1000.0 <= l.0))
        };
        if !self.is_ok() {
            return false;
        }
        let saved = self.in_micros();
        within(slo.ttft_p99_ms, saved.ttft())
            && within(slo.e2e_p99_ms, saved.e2e())
            && within(slo.e2e_corrected_p99_ms, saved.e2e_corrected())
            && (slo.itl_p99_ms.is_none()
                || saved.output_tokens < 2
                || within(slo.itl_p99_ms, saved.tpot()))
    }

    /// The record with its times cut to whole microseconds.
    fn in_micros(&self) -> RequestRecord {
        let us = |d: Duration| Duration::from_micros(super::micros(d));
        RequestRecord {
            intended: us(self.intended),
            sent: self.sent.map(us),
            attempt_sent: self.attempt_sent.map(us),
            first_token: self.first_token.map(us),
            end: self.end.map(us),
            backoff: us(self.backoff),
            connect: self.connect.map(us),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(attempt_sent_ns: u64, first_token_ns: u64, end_ns: u64) -> RequestRecord {
        let ns = Duration::from_nanos;
        RequestRecord {
            index: 0,
            prompt_tokens: 10,
            max_tokens: 10,
            intended: Duration::ZERO,
            sent: Some(ns(attempt_sent_ns)),
            attempt_sent: Some(ns(attempt_sent_ns)),
            first_token: Some(ns(first_token_ns)),
            end: Some(ns(end_ns)),
            status: Some(200),
            output_tokens: 5,
            content_chunks: 5,
            tokens_counted: false,
            cached_tokens: 0,
            outcome: Outcome::Ok,
            attempts: 1,
            backoff: Duration::ZERO,
            error: None,
            connect: None,
        }
    }

    fn slo(ttft_ms: f64, itl_ms: Option<f64>) -> SloConfig {
        SloConfig {
            ttft_p99_ms: Some(Positive(ttft_ms)),
            itl_p99_ms: itl_ms.map(Positive),
            ..SloConfig::default()
        }
    }

    #[test]
    fn a_request_meets_the_limits_on_its_own_times_as_requests_csv_keeps_them() {
        let ms = 1_000_000;
        assert!(answered(0, 200 * ms, 400 * ms).meets(&slo(200.0, None)));
        assert!(!answered(0, 200 * ms + 1000, 400 * ms).meets(&slo(200.0, None)));
        // Sent at 1 µs, first token at 200.001999 ms: 200.000999 ms, but 200 ms in the
        // whole microseconds of requests.csv.
        assert!(answered(1000, 200 * ms + 1999, 400 * ms).meets(&slo(200.0, None)));
        // Time per output token: (400 − 100) / 4 = 75 ms.
        let record = answered(0, 100 * ms, 400 * ms);
        assert!(record.meets(&slo(200.0, Some(75.0))));
        assert!(!record.meets(&slo(200.0, Some(74.9))));
        // With fewer than two tokens there is no gap to judge.
        let one = RequestRecord {
            output_tokens: 1,
            ..record.clone()
        };
        assert!(one.meets(&slo(200.0, Some(74.9))));
        let failed = RequestRecord {
            outcome: Outcome::Failed(ErrorClass::RateLimited),
            ..record
        };
        assert!(!failed.meets(&SloConfig::default()));
    }
}
