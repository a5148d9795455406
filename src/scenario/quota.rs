//! `[quota]`: a provider's per-minute quota for `llmbench quota`, which plans a batch
//! against it without sending anything: OpenAI's RPM and TPM, or Anthropic's RPM, ITPM
//! and OTPM (its output tokens reserved or counted as generated), plus a deadline and
//! where to take the latency from. The arithmetic is the planner's and the quota's.

use super::distribution::TokenDistribution;
use super::mock::OtpmMode;
use super::values::{Count, Fraction, Seconds};
use serde::{Deserialize, Serialize};

/// The `[quota]` section. Limits absent here are read from `[mock.rate_limit]` when the
/// target is the mock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests per minute.
    pub rpm: Option<Count>,
    /// OpenAI tokens per minute, charged max(`max_tokens`, prompt tokens) at admission.
    pub tpm: Option<Count>,
    /// Anthropic input tokens per minute.
    pub itpm: Option<Count>,
    /// Anthropic output tokens per minute.
    pub otpm: Option<Count>,
    /// How Anthropic's OTPM is charged: reserved from `max_tokens` (refunded at the
    /// end) or as generated.
    pub otpm_mode: Option<OtpmMode>,
    /// The share of the quota the client uses, as a `rate` strategy's `headroom`
    /// (default 0.98, the same).
    pub headroom: Option<Fraction>,
    /// Tokens each response generates (default: the mock's `output_tokens`, else
    /// `max_tokens`).
    pub output_tokens: Option<TokenDistribution>,
    /// The batch must be done within this many seconds: the planner says what quota it
    /// needs.
    pub deadline_s: Option<Seconds>,
    /// A saved run's `summary.json` (or its folder) whose E2E latency sets the
    /// concurrency (Little's law); relative to the scenario's folder. Absent: the
    /// mock's latency model.
    pub latency_from: Option<std::path::PathBuf>,
    /// The strategy of `latency_from` to read (default: its first).
    pub latency_strategy: Option<String>,
}

impl QuotaConfig {
    /// Checks that involve several keys; the message names the key at fault.
    pub(super) fn check(&self) -> Result<(), String> {
        let anthropic = self.itpm.is_some() || self.otpm.is_some();
        if self.tpm.is_some() && anthropic {
            return Err(
                "`tpm` is OpenAI's and `itpm`/`otpm` Anthropic's: give one provider's limits"
                    .into(),
            );
        }
        if self.otpm_mode.is_some() && self.otpm.is_none() {
            return Err("`otpm_mode` needs `otpm`".into());
        }
        if self.latency_strategy.is_some() && self.latency_from.is_none() {
            return Err(
                "`latency_strategy` needs `latency_from` (a saved run's summary.json)".into(),
            );
        }
        Ok(())
    }
}
