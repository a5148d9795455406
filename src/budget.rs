//! Hard caps on what a run may spend: once one is reached, no new request is sent (the
//! ones in flight finish), unsent items are recorded as `over_budget`, and the run
//! stops after the current strategy. Shared by all strategies of a run.
//!
//! Reads its `[budget]` section from the scenario; knows nothing of how requests are sent.

use crate::scenario::{BudgetConfig, Price};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Budget {
    config: BudgetConfig,
    price: Option<Price>,
    sent: AtomicU64,
    output_tokens: AtomicU64,
    /// Spent so far, in millionths of a dollar.
    micro_dollars: AtomicU64,
    /// Why sending stopped, once it has.
    exhausted: OnceLock<String>,
}

impl Budget {
    pub fn new(config: BudgetConfig, price: Option<Price>) -> Budget {
        Budget {
            config,
            price,
            sent: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
            micro_dollars: AtomicU64::new(0),
            exhausted: OnceLock::new(),
        }
    }

    /// Takes one attempt from the budget; false (and nothing taken) once it is spent.
    pub fn admit(&self) -> bool {
        if self.exhausted.get().is_some() {
            return false;
        }
        if let Some(max) = self.config.max_requests {
            let sent = self.sent.fetch_add(1, Ordering::AcqRel);
            if sent >= max.0 {
                self.stop(format!("max_requests {} reached", max.0));
                return false;
            }
        }
        true
    }

    /// Counts what an answered request used.
    pub fn spend(&self, prompt_tokens: u32, output_tokens: u32) {
        let tokens = self
            .output_tokens
            .fetch_add(u64::from(output_tokens), Ordering::AcqRel)
            + u64::from(output_tokens);
        if let Some(max) = self.config.max_output_tokens
            && tokens >= max.0
        {
            self.stop(format!("max_output_tokens {} reached", max.0));
        }
        let (Some(price), Some(max)) = (self.price, self.config.max_cost) else {
            return;
        };
        let micro = f64::from(prompt_tokens) * price.input_per_million.0
            + f64::from(output_tokens) * price.output_per_million.0;
        let spent = self
            .micro_dollars
            .fetch_add(micro.round() as u64, Ordering::AcqRel)
            + micro.round() as u64;
        if spent as f64 / 1e6 >= max.0 {
            self.stop(format!("max_cost ${} reached", max.0));
        }
    }

    fn stop(&self, reason: String) {
        let _ = self.exhausted.set(reason);
    }

    /// Why sending stopped, if it has.
    pub fn exhausted(&self) -> Option<&str> {
        self.exhausted.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Count, NonNegative, Positive};

    #[test]
    fn each_cap_stops_sending() {
        let requests = Budget::new(
            BudgetConfig {
                max_requests: Some(Count(2)),
                ..Default::default()
            },
            None,
        );
        assert!(requests.admit() && requests.admit());
        assert!(!requests.admit());
        assert_eq!(requests.exhausted(), Some("max_requests 2 reached"));

        let tokens = Budget::new(
            BudgetConfig {
                max_output_tokens: Some(Count(100)),
                ..Default::default()
            },
            None,
        );
        tokens.spend(10, 60);
        assert!(tokens.admit());
        tokens.spend(10, 40);
        assert!(!tokens.admit());

        let price = Price {
            input_per_million: NonNegative(1.0),
            output_per_million: NonNegative(4.0),
        };
        let cost = Budget::new(
            BudgetConfig {
                max_cost: Some(Positive(0.01)),
                ..Default::default()
            },
            Some(price),
        );
        cost.spend(1000, 1000); // $0.001 + $0.004
        assert!(cost.admit());
        cost.spend(1000, 1000); // $0.010 in all
        assert!(!cost.admit());
        assert_eq!(cost.exhausted(), Some("max_cost $0.01 reached"));
    }
}
