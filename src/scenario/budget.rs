//! `[budget]`: hard caps on what a run may spend. Enforced by the budget stage.

use super::values::{Count, Positive};
use serde::{Deserialize, Serialize};

/// `[budget]`: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Attempts sent, retries included.
    pub max_requests: Option<Count>,
    /// Output tokens received.
    pub max_output_tokens: Option<Count>,
    /// Dollars spent on answered requests, at `[target.price]`.
    pub max_cost: Option<Positive>,
}

impl BudgetConfig {
    pub fn is_empty(&self) -> bool {
        *self == BudgetConfig::default()
    }
}
