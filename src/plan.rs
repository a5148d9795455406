//! What a run will send, shown before it sends it: the guard rail for paid APIs.
//!
//! Reads the scenario and its work items; sends nothing.

use crate::scenario::Scenario;
use crate::workload::WorkItem;
use std::fmt;

pub struct Plan {
    pub target: String,
    pub loopback: bool,
    pub strategies: usize,
    /// Requests over all strategies (each strategy sends every work item), before
    /// retries.
    pub requests: u64,
    pub input_tokens: u64,
    /// The most output tokens the requests may produce (their `max_tokens`).
    pub max_output_tokens: u64,
    /// Dollars, when the target has prices: input plus the most output.
    pub max_cost: Option<f64>,
}

impl Plan {
    /// What running every strategy of `scenario` on `items` will send.
    pub fn of(scenario: &Scenario, items: &[WorkItem]) -> Plan {
        let strategies = scenario.strategies().count();
        let times = strategies as u64;
        let input_tokens = items
            .iter()
            .map(|i| u64::from(i.prompt_tokens))
            .sum::<u64>()
            * times;
        let max_output_tokens = items.iter().map(|i| u64::from(i.max_tokens)).sum::<u64>() * times;
        let max_cost = scenario.target.price().map(|p| {
            (input_tokens as f64 * p.input_per_million.0
                + max_output_tokens as f64 * p.output_per_million.0)
                / 1e6
        });
        Plan {
            target: scenario.target.describe(),
            loopback: scenario.target.is_loopback(),
            strategies,
            requests: items.len() as u64 * times,
            input_tokens,
            max_output_tokens,
            max_cost,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "target:         {}{}",
            self.target,
            if self.loopback { " (this machine)" } else { "" }
        )?;
        writeln!(
            f,
            "requests:       {} ({}, before retries)",
            self.requests,
            count_strategies(self.strategies)
        )?;
        writeln!(f, "input tokens:   {} (estimated)", self.input_tokens)?;
        writeln!(f, "output tokens:  at most {}", self.max_output_tokens)?;
        match self.max_cost {
            Some(cost) if cost < 1.0 => write!(f, "cost:           at most ${cost:.4}"),
            Some(cost) => write!(f, "cost:           at most ${cost:.2}"),
            None => write!(
                f,
                "cost:           unknown (set [target.price] to estimate it)"
            ),
        }
    }
}

/// "1 strategy", "4 strategies".
pub fn count_strategies(n: usize) -> String {
    format!("{n} strateg{}", if n == 1 { "y" } else { "ies" })
}
