//! `[workload]`: what every strategy is offered (how many requests, when they arrive,
//! their prompt and output lengths, the work done after each response). The workload
//! stage turns it into work items.

use super::arrival::ArrivalConfig;
use super::distribution::{Distribution, TokenDistribution};
use super::tagged;
use super::values::limits::MAX_REQUESTS;
use super::values::{CpuMicros, RequestCount, Seconds, TokenCount};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// A file of real prompts (JSONL with a `prompt` field, or text with one prompt per
    /// line), relative to the scenario's folder; absent, prompts are synthetic.
    pub prompts: Option<std::path::PathBuf>,
    /// How many requests each strategy is offered (at most).
    pub requests: Option<RequestCount>,
    /// Offer arrivals for this long at most (open-loop schedules).
    pub duration_s: Option<Seconds>,
    /// When work items become available.
    #[serde(default, deserialize_with = "tagged::kind")]
    pub arrival: ArrivalConfig,
    /// Seed of the work-item draws (arrival times, prompt and output lengths).
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub stream: bool,
    /// Prompt length of synthetic items (default 256); a trace's rows give their own.
    pub prompt_tokens: Option<TokenDistribution>,
    /// Completion cap of synthetic items (default 128); a trace's rows give their own.
    pub max_tokens: Option<TokenDistribution>,
    /// Words every synthetic prompt starts with, the same for all items (a system
    /// prompt, a shared document), so that a provider's prefix cache can hit.
    #[serde(default = "no_tokens")]
    pub shared_prefix_tokens: TokenCount,
    /// CPU time spent after each response (tokenising, parsing…), in microseconds.
    pub cpu_work_us: Option<CpuMicros>,
    /// Run that work with `spawn_blocking` instead of on the runtime's own threads.
    #[serde(default)]
    pub offload: bool,
}

impl WorkloadConfig {
    /// Prompt lengths of synthetic items.
    pub fn prompt_tokens(&self) -> TokenDistribution {
        self.prompt_tokens.unwrap_or_else(default_prompt_tokens)
    }

    /// Completion caps of synthetic items.
    pub fn max_tokens(&self) -> TokenDistribution {
        self.max_tokens.unwrap_or_else(default_max_tokens)
    }

    /// Checks that involve several keys; the message names the key at fault.
    pub(super) fn check(&self) -> Result<(), String> {
        self.arrival.check().map_err(|m| format!("arrival: {m}"))?;
        if self.prompts.is_some() && self.shared_prefix_tokens.0 > 0 {
            return Err("`shared_prefix_tokens` applies to synthetic prompts only, and `prompts` names a file of real ones: remove one of them".into());
        }
        if matches!(self.arrival, ArrivalConfig::Trace { .. }) {
            let set = [
                ("prompt_tokens", self.prompt_tokens.is_some()),
                ("max_tokens", self.max_tokens.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "`{key}` does not apply to a trace: each row gives its own lengths; remove it"
                ));
            }
        }
        if self.requests.is_none()
            && let Some(offered) = self.arrival.expected_arrivals(self.duration_s)
            && offered > MAX_REQUESTS as f64
        {
            return Err(format!(
                "this schedule offers about {offered:.0} requests, more than the {MAX_REQUESTS} a run can hold: set `requests`, or lower the rate or `duration_s`"
            ));
        }
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

fn no_tokens() -> TokenCount {
    TokenCount(0)
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
