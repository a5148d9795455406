//! Service-level objectives: thresholds a strategy's results must meet, checked from
//! the saved summary, so `llmbench report` re-evaluates them without a re-run. A breach
//! makes `llmbench run` and `llmbench report` exit with [`EXIT_SLO_FAILED`].
//! Reads only the saved [`crate::summary`] schema, never the report that shows it.

use crate::metric::Metric;
use crate::scenario::{Positive, Share, SloConfig};
use crate::summary::StrategySummary;
use serde::Serialize;

/// Exit code when an SLO is not met: 99, as k6 does for a breached threshold.
pub const EXIT_SLO_FAILED: u8 = 99;

/// One objective checked for one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub objective: String,
    pub limit: f64,
    /// `None` when the run has no sample for it (e.g. TTFT without streaming): a failure.
    pub actual: Option<f64>,
    pub passed: bool,
}

impl SloConfig {
    pub fn is_empty(&self) -> bool {
        *self == SloConfig::default()
    }

    /// Checks every objective against one strategy's summary.
    pub fn evaluate(&self, s: &StrategySummary) -> Vec<Check> {
        let p99 = |metric| s.latency(metric).map(|p| p.p99);
        let at_most = |objective: &str, limit: Option<Positive>, actual: Option<f64>| {
            limit.map(|l| Check {
                objective: format!("{objective} ≤ {} ms", l.0),
                limit: l.0,
                actual,
                passed: actual.is_some_and(|a| a <= l.0),
            })
        };
        let error_rate =
            (s.requests.total > 0).then(|| s.requests.failed as f64 / s.requests.total as f64);
        [
            at_most("TTFT p99", self.ttft_p99_ms, p99(Metric::Ttft)),
            at_most("E2E p99", self.e2e_p99_ms, p99(Metric::E2e)),
            at_most(
                "E2E p99 from intended",
                self.e2e_corrected_p99_ms,
                p99(Metric::E2eCorrected),
            ),
            at_most("ITL p99", self.itl_p99_ms, p99(Metric::Itl)),
            self.max_error_rate.map(|Share(limit)| Check {
                objective: format!("error rate ≤ {:.1} %", limit * 100.0),
                limit,
                actual: error_rate,
                passed: error_rate.is_some_and(|r| r <= limit),
            }),
            self.min_throughput_rps.map(|Positive(limit)| Check {
                objective: format!("throughput ≥ {limit} req/s"),
                limit,
                actual: Some(s.requests_per_s),
                passed: s.requests_per_s >= limit,
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
