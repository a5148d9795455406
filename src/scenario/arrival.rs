//! Arrivals: `[workload] arrival = { kind = … }`, when work items become available. The
//! schedule itself is drawn by the workload stage.

use super::values::{Count, Positive};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// Written `{ kind = "…", … }`, read through [`super::tagged`].
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalConfig {
    /// Everything available at once (the `asyncio.gather` case).
    #[default]
    Batch,
    /// Evenly spaced: one every 1/rate seconds.
    Constant { rate: Positive },
    /// A Poisson process: exponential gaps with mean 1/rate.
    Poisson { rate: Positive },
    /// Gamma-distributed gaps with mean 1/rate; burstiness is the shape: 1 is Poisson,
    /// below 1 burstier, above 1 more regular (vLLM's definition).
    Gamma {
        rate: Positive,
        burstiness: Positive,
    },
    /// `size` arrivals at once, every `interval_s`.
    Bursts { size: Count, interval_s: Positive },
    /// Rate changing linearly within each stage, from the previous stage's rate (or
    /// `start_rate`) to the stage's `rate`; the schedule ends with the last stage.
    Ramp {
        #[serde(default)]
        start_rate: f64,
        stages: Vec<RampStage>,
    },
    /// Replay a recorded trace (CSV or JSONL; see the workload's trace reader): each row is one
    /// request with its time, prompt length and completion length. Times are multiplied
    /// by `time_scale` (0.5 replays twice as fast). A relative `path` is taken from the
    /// scenario file's folder.
    Trace {
        path: std::path::PathBuf,
        #[serde(default = "unscaled")]
        time_scale: Positive,
    },
}

fn unscaled() -> Positive {
    Positive(1.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampStage {
    /// Requests per second reached at the end of the stage.
    pub rate: f64,
    pub duration_s: Positive,
}

impl ArrivalConfig {
    /// Whether the schedule ends by itself (so needs no `requests` or `duration_s`).
    pub fn is_finite(&self) -> bool {
        matches!(
            self,
            ArrivalConfig::Ramp { .. } | ArrivalConfig::Trace { .. }
        )
    }

    /// Checks that involve several keys; the message names the key at fault.
    pub fn check(&self) -> Result<(), String> {
        let ArrivalConfig::Ramp { start_rate, stages } = self else {
            return Ok(());
        };
        if !(start_rate.is_finite() && *start_rate >= 0.0) {
            return Err(format!("start_rate must be a rate ≥ 0, got {start_rate}"));
        }
        if stages.is_empty() {
            return Err(
                "a ramp needs at least one stage, e.g. stages = [{ rate = 10, duration_s = 60 }]"
                    .into(),
            );
        }
        for (i, stage) in stages.iter().enumerate() {
            if !(stage.rate.is_finite() && stage.rate >= 0.0) {
                return Err(format!(
                    "stages[{i}].rate must be a rate ≥ 0, got {}",
                    stage.rate
                ));
            }
        }
        Ok(())
    }
}
