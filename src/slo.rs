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
    /// Which side of `limit` meets the objective.
    #[serde(skip)]
    pub bound: Bound,
    /// `None` when the run has no sample for it (e.g. TTFT without streaming): a failure.
    pub actual: Option<f64>,
    pub passed: bool,
}

/// Which side of its limit an objective's value must stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A ceiling: latencies, the error rate.
    AtMost,
    /// A floor: throughput.
    AtLeast,
}

impl Bound {
    /// Whether `actual` is on the right side of `limit` (the limit itself meets it).
    pub fn met(self, actual: f64, limit: f64) -> bool {
        match self {
            Bound::AtMost => actual <= limit,
            Bound::AtLeast => actual >= limit,
        }
    }

    /// A check of `actual` against `limit`, described as `objective`.
    fn check(self, objective: String, limit: f64, actual: Option<f64>) -> Check {
        Check {
            objective,
            limit,
            bound: self,
            actual,
            passed: actual.is_some_and(|a| self.met(a, limit)),
        }
    }
}

impl SloConfig {
    pub fn is_empty(&self) -> bool {
        *self == SloConfig::default()
    }

    /// Checks every objective against one strategy's summary.
    pub fn evaluate(&self, s: &StrategySummary) -> Vec<Check> {
        let p99 = |metric| s.latency(metric).map(|p| p.p99);
        let at_most = |objective: &str, limit: Option<Positive>, actual: Option<f64>| {
            limit.map(|l| Bound::AtMost.check(format!("{objective} ≤ {} ms", l.0), l.0, actual))
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
            self.max_error_rate.map(|Share(limit)| {
                let objective = format!("error rate ≤ {:.1} %", limit * 100.0);
                Bound::AtMost.check(objective, limit, error_rate)
            }),
            self.min_throughput_rps.map(|Positive(limit)| {
                let objective = format!("throughput ≥ {limit} req/s");
                Bound::AtLeast.check(objective, limit, Some(s.requests_per_s))
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_objective_says_which_side_of_its_limit_meets_it() {
        let summary: StrategySummary = serde_json::from_value(serde_json::json!({
            "label": "s", "kind": "serial", "limit": null, "interrupted": false,
            "requests": {"total": 10, "ok": 9, "failed": 1, "rate_limited": 0,
                         "cancelled": 0, "errors": {}},
            "makespan_s": 5.0, "scheduled_rate_per_s": null,
            "achieved_send_rate_per_s": null, "requests_per_s": 1.8,
            "output_tokens": 0, "output_tokens_per_s": 0.0, "latency_ms": {}, "mock": null
        }))
        .unwrap();
        let slo = SloConfig {
            max_error_rate: Some(Share(0.1)),
            min_throughput_rps: Some(Positive(2.0)),
            ..SloConfig::default()
        };
        let checks: Vec<(Bound, bool)> = slo
            .evaluate(&summary)
            .iter()
            .map(|c| (c.bound, c.passed))
            .collect();
        // An error rate at its limit meets it; a throughput under its floor does not.
        assert_eq!(checks, [(Bound::AtMost, true), (Bound::AtLeast, false)]);
        assert!(Bound::AtLeast.met(2.0, 2.0) && !Bound::AtMost.met(2.1, 2.0));
    }
}
