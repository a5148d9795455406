//! `[slo]`: service-level objectives a strategy's results must meet. Checked by the slo
//! stage from the saved summary.

use super::values::{Positive, Share};
use serde::{Deserialize, Serialize};

/// The `[slo]` section. Every key is optional; latencies are in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// p99 time to first token.
    pub ttft_p99_ms: Option<Positive>,
    /// p99 end-to-end latency once sent.
    pub e2e_p99_ms: Option<Positive>,
    /// p99 end-to-end latency from the intended start (what the caller waits).
    pub e2e_corrected_p99_ms: Option<Positive>,
    /// p99 inter-token latency.
    pub itl_p99_ms: Option<Positive>,
    /// Largest acceptable share of failed requests (429s included), 0 to 1.
    pub max_error_rate: Option<Share>,
    /// Smallest acceptable successful requests per second.
    pub min_throughput_rps: Option<Positive>,
}
