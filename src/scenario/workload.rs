//! `[workload]`: what every strategy is offered (how many requests, when they arrive,
//! their prompt and output lengths, the work done after each response). The workload
//! stage turns it into work items.

use super::arrival::ArrivalConfig;
use super::distribution::{Distribution, TokenDistribution};
use super::tagged;
use super::values::{Count, Positive};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// A file of real prompts (JSONL with a `prompt` field, or text with one prompt per
    /// line), relative to the scenario's folder; absent, prompts are synthetic.
    pub prompts: Option<std::path::PathBuf>,
    /// How many requests each strategy is offered (at most).
    pub requests: Option<Count>,
    /// Offer arrivals for this long at most (open-loop schedules).
    pub duration_s: Option<Positive>,
    /// When work items become available.
    #[serde(default, deserialize_with = "tagged::kind")]
    pub arrival: ArrivalConfig,
    /// Seed of the work-item draws (arrival times, prompt and output lengths).
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub stream: bool,
    #[serde(default = "default_prompt_tokens")]
    pub prompt_tokens: TokenDistribution,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: TokenDistribution,
    /// CPU time spent after each response (tokenising, parsing…), in microseconds.
    pub cpu_work_us: Option<Count>,
    /// Run that work with `spawn_blocking` instead of on the runtime's own threads.
    #[serde(default)]
    pub offload: bool,
}

impl WorkloadConfig {
    /// Checks that involve several keys; the message names the key at fault.
    pub(super) fn check(&self) -> Result<(), String> {
        self.arrival.check().map_err(|m| format!("arrival: {m}"))?;
        match (&self.arrival, self.requests, self.duration_s) {
            (ArrivalConfig::Batch, None, _) => Err(
                "a batch needs `requests`: how many work items are available at the start".into(),
            ),
            (ArrivalConfig::Batch, Some(_), Some(_)) => Err(
                "`duration_s` does not apply to a batch (everything arrives at once); remove it"
                    .into(),
            ),
            (arrival, None, None) if !arrival.is_finite() => Err(
                "an open-ended arrival schedule needs a bound: `requests`, `duration_s`, or both"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_prompt_tokens() -> TokenDistribution {
    TokenDistribution(Distribution::Constant { value: 256.0 })
}

fn default_max_tokens() -> TokenDistribution {
    TokenDistribution(Distribution::Constant { value: 128.0 })
}
