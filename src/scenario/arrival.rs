//! Arrivals: `[workload] arrival = { kind = … }`, when work items become available. The
//! schedule itself is drawn by the workload stage.

use super::values::limits::MAX_RATE;
use super::values::{Rate, RequestCount, Scale, Seconds};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// Written `{ kind = "…", … }`, read through [`super::tagged`].
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalConfig {
    /// Everything available at once (the `asyncio.gather` case).
    #[default]
    Batch,
    /// Evenly spaced: one every 1/rate seconds.
    Constant { rate: Rate },
    /// A Poisson process: exponential gaps with mean 1/rate.
    Poisson { rate: Rate },
    /// Gamma-distributed gaps with mean 1/rate; burstiness is the shape: 1 is Poisson,
    /// below 1 burstier, above 1 more regular (vLLM's definition).
    Gamma { rate: Rate, burstiness: Scale },
    /// `size` arrivals at once, every `interval_s`.
    Bursts {
        size: RequestCount,
        interval_s: Seconds,
    },
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
        time_scale: Scale,
    },
}

fn unscaled() -> Scale {
    Scale(1.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampStage {
    /// Requests per second reached at the end of the stage.
    pub rate: f64,
    pub duration_s: Seconds,
}

impl ArrivalConfig {
    /// Whether the schedule ends by itself (so needs no `requests` or `duration_s`).
    pub fn is_finite(&self) -> bool {
        matches!(
            self,
            ArrivalConfig::Ramp { .. } | ArrivalConfig::Trace { .. }
        )
    }

    /// About how many arrivals the schedule offers within `duration_s` (and without
    /// one, for the schedules that end by themselves); `None` for a trace, whose rows
    /// are counted when it is read.
    pub fn expected_arrivals(&self, duration_s: Option<Seconds>) -> Option<f64> {
        let span = duration_s.map(|d| d.0);
        match self {
            ArrivalConfig::Batch | ArrivalConfig::Trace { .. } => None,
            ArrivalConfig::Constant { rate }
            | ArrivalConfig::Poisson { rate }
            | ArrivalConfig::Gamma { rate, .. } => span.map(|s| rate.0 * s),
            ArrivalConfig::Bursts { size, interval_s } => {
                span.map(|s| size.0 as f64 * ((s / interval_s.0).floor() + 1.0))
            }
            ArrivalConfig::Ramp { start_rate, stages } => {
                let mut from = *start_rate;
                let mut total = 0.0;
                for stage in stages {
                    total += (from + stage.rate) / 2.0 * stage.duration_s.0;
                    from = stage.rate;
                }
                Some(total)
            }
        }
    }

    /// Checks that involve several keys; the message names the key at fault.
    pub fn check(&self) -> Result<(), String> {
        let ArrivalConfig::Ramp { start_rate, stages } = self else {
            return Ok(());
        };
        let rate_ok = |r: f64| r.is_finite() && (0.0..=MAX_RATE).contains(&r);
        if !rate_ok(*start_rate) {
            return Err(format!(
                "start_rate must be a rate from 0 to {MAX_RATE} per second, got {start_rate}"
            ));
        }
        if stages.is_empty() {
            return Err(
                "a ramp needs at least one stage, e.g. stages = [{ rate = 10, duration_s = 60 }]"
                    .into(),
            );
        }
        for (i, stage) in stages.iter().enumerate() {
            if !rate_ok(stage.rate) {
                return Err(format!(
                    "stages[{i}].rate must be a rate from 0 to {MAX_RATE} per second, got {}",
                    stage.rate
                ));
            }
        }
        Ok(())
    }
}
