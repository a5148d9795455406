//! Turns the `[workload]` section into the list of work items every strategy executes:
//! reads the files it names (prompts, a trace) and draws the rest from the seed.
//!
//! The list is drawn once from the seed and shared, so strategies differ only in how
//! they dispatch, never in what they are offered or when. Imports only the scenario.

mod arrival;
pub mod prompts;
pub mod trace;

pub use trace::{RowError, TraceRow};

use crate::scenario::limits::MAX_REQUESTS;
use crate::scenario::{ArrivalConfig, Scenario, WorkloadConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// One request to make. Prompt text is derived on demand from the item, so a long
/// workload costs a few bytes per item rather than a prompt each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkItem {
    pub index: u32,
    /// A real prompt from the scenario's prompt file; absent, the prompt is synthetic.
    #[serde(skip)]
    pub prompt: Option<std::sync::Arc<str>>,
    /// When the item becomes available, from the strategy's start (its intended start).
    pub at: Duration,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// How many of a synthetic prompt's words are the prefix every item shares
    /// (`shared_prefix_tokens`, at most all but the item's own first word).
    #[serde(skip)]
    pub shared_prefix: u32,
}

/// Words the synthetic prompts are made of. Each is one token under the mock's
/// one-token-per-word count.
const PROMPT_WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

impl WorkItem {
    /// The prompt: the item's real prompt, or a synthetic one of exactly `prompt_tokens`
    /// words: the shared prefix, if any, then a word unique to the item (so the mock can
    /// derive per-item draws from the request, see `mock::generator`), then filler.
    pub fn prompt_text(&self) -> String {
        let (prefix, own) = self.prompt_parts();
        if prefix.is_empty() {
            own
        } else {
            format!("{prefix} {own}")
        }
    }

    /// The prompt in two parts: the prefix shared by every item (empty without one) and
    /// the item's own part. Their words together are [`WorkItem::prompt_text`]'s.
    pub fn prompt_parts(&self) -> (String, String) {
        if let Some(prompt) = &self.prompt {
            return (String::new(), prompt.to_string());
        }
        let shared = self.shared_prefix.min(self.prompt_tokens.saturating_sub(1)) as usize;
        let prefix: Vec<&str> = (0..shared)
            .map(|k| PROMPT_WORDS[k % PROMPT_WORDS.len()])
            .collect();
        let mut own = format!("item-{}", self.index);
        for k in shared + 1..self.prompt_tokens as usize {
            let word = PROMPT_WORDS[(self.index as usize + k * 7) % PROMPT_WORDS.len()];
            let _ = write!(own, " {word}");
        }
        (prefix.join(" "), own)
    }
}

/// Why a file the workload names could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{0} (the trace of workload.arrival)")]
    Trace(RowError),
    #[error("{0} (the file of workload.prompts)")]
    Prompts(RowError),
    #[error(
        "workload: the schedule drew more than {MAX_REQUESTS} requests, the most a run can hold: set `requests`, or lower the rate or `duration_s`"
    )]
    TooMany,
}

/// Reads the files the scenario names (relative to its folder) and draws the work items
/// every strategy is offered. Called before a run and by `validate`, so a bad prompt or
/// trace row is reported before any traffic.
pub fn load(scenario: &Scenario) -> Result<Vec<WorkItem>, WorkloadError> {
    let config = scenario.workload();
    let folder = scenario.folder();
    let prompts = match &config.prompts {
        Some(path) => prompts::load(&folder.join(path)).map_err(WorkloadError::Prompts)?,
        None => Vec::new(),
    };
    let trace = match &config.arrival {
        ArrivalConfig::Trace { path, time_scale } => {
            Some(trace::load(&folder.join(path), time_scale.0).map_err(WorkloadError::Trace)?)
        }
        _ => None,
    };
    let items = generate(config, trace.as_deref(), &prompts);
    if items.len() as u64 > MAX_REQUESTS {
        return Err(WorkloadError::TooMany);
    }
    Ok(items)
}

/// Draws the work items for a workload, in arrival order; the same seed always gives
/// the same list. With a trace, its rows give the times and lengths instead; with
/// prompts, item `i` asks prompt `i` (cycling), whose word count is its prompt length.
pub fn generate(
    config: &WorkloadConfig,
    trace: Option<&[TraceRow]>,
    prompts: &[Arc<str>],
) -> Vec<WorkItem> {
    let mut items = match trace {
        Some(rows) => replay(config, rows),
        None => draw(config),
    };
    for item in &mut items {
        item.shared_prefix = u32::try_from(config.shared_prefix_tokens.0).unwrap_or(u32::MAX);
    }
    if !prompts.is_empty() {
        for item in &mut items {
            let prompt = prompts[item.index as usize % prompts.len()].clone();
            item.prompt_tokens = u32::try_from(prompt.split_whitespace().count())
                .unwrap_or(u32::MAX)
                .max(1);
            item.prompt = Some(prompt);
        }
    }
    items
}

fn draw(config: &WorkloadConfig) -> Vec<WorkItem> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // One past the most a run holds, so that a schedule drawing more is seen, not cut.
    let most = config.requests.map_or(MAX_REQUESTS + 1, |n| n.0);
    let offsets = config
        .arrival
        .offsets(Some(most), config.duration_s.map(|d| d.0), &mut rng);
    let (prompt_tokens, max_tokens) = (config.prompt_tokens(), config.max_tokens());
    offsets
        .into_iter()
        .enumerate()
        .map(|(index, at)| WorkItem {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            prompt: None,
            at: Duration::from_secs_f64(at),
            prompt_tokens: prompt_tokens.sample(&mut rng),
            max_tokens: max_tokens.sample(&mut rng),
            shared_prefix: 0,
        })
        .collect()
}

/// One item per trace row, within the workload's `requests` and `duration_s` bounds.
fn replay(config: &WorkloadConfig, rows: &[TraceRow]) -> Vec<WorkItem> {
    let limit = config.requests.map_or(usize::MAX, |n| n.get());
    let end = config.duration_s.map(|d| Duration::from_secs_f64(d.0));
    rows.iter()
        .take_while(|row| end.is_none_or(|end| row.at < end))
        .take(limit)
        .enumerate()
        .map(|(index, row)| WorkItem {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            prompt: None,
            at: row.at,
            prompt_tokens: row.prompt_tokens,
            max_tokens: row.output_tokens,
            shared_prefix: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Distribution, RequestCount, TokenDistribution};

    fn config(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            prompts: None,
            requests: Some(RequestCount(50)),
            duration_s: None,
            arrival: ArrivalConfig::Batch,
            seed,
            stream: true,
            prompt_tokens: Some(TokenDistribution(Distribution::Uniform {
                min: 5.0,
                max: 500.0,
            })),
            max_tokens: Some(TokenDistribution(Distribution::Lognormal {
                median: 50.0,
                p99: 400.0,
            })),
            cpu_work_us: None,
            offload: false,
            shared_prefix_tokens: crate::scenario::TokenCount(0),
        }
    }

    #[test]
    fn same_seed_same_items_other_seed_other_items() {
        assert_eq!(
            generate(&config(1), None, &[]),
            generate(&config(1), None, &[])
        );
        assert_ne!(
            generate(&config(1), None, &[]),
            generate(&config(2), None, &[])
        );
    }

    #[test]
    fn a_shared_prefix_starts_every_prompt_and_keeps_its_length() {
        let mut config = config(4);
        config.shared_prefix_tokens = crate::scenario::TokenCount(3);
        let items = generate(&config, None, &[]);
        let prefix = items[0].prompt_parts().0;
        assert_eq!(prefix, "alpha bravo charlie");
        for item in &items {
            let text = item.prompt_text();
            assert_eq!(text.split_whitespace().count(), item.prompt_tokens as usize);
            assert!(text.starts_with(&format!("{prefix} item-{} ", item.index)));
        }
    }

    #[test]
    fn prompt_has_exactly_prompt_tokens_words() {
        for item in generate(&config(3), None, &[]) {
            let words = item.prompt_text().split_whitespace().count();
            assert_eq!(words, item.prompt_tokens as usize);
            assert!(
                item.prompt_text()
                    .starts_with(&format!("item-{} ", item.index))
                    || item.prompt_tokens == 1
            );
        }
    }
}
