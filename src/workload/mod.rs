//! Turns the `[workload]` section into the list of work items every strategy executes:
//! reads the files it names (prompts, a trace) and draws the rest from the seed.
//!
//! The items are drawn from the seed in order, the same for every strategy, so
//! strategies differ only in how they dispatch, never in what they are offered or when.
//! They are drawn as they fall due, never held in a list. Imports only the scenario.

mod arrival;
mod filler;
pub mod prompts;
pub mod trace;

pub use trace::{RowError, TraceRow};

use filler::PROMPT_WORDS;

use crate::scenario::limits::MAX_REQUESTS;
use crate::scenario::{ArrivalConfig, Scenario, TokenDistribution, WorkloadConfig};
use arrival::Offsets;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
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

impl WorkItem {
    /// The prompt: the item's real prompt, or a synthetic one of exactly `prompt_tokens`
    /// words: the shared prefix, if any, then a word unique to the item (so the mock can
    /// derive per-item draws from the request, see `mock::generator`), then filler.
    pub fn prompt_text(&self) -> String {
        if let Some(prompt) = &self.prompt {
            return prompt.to_string();
        }
        let mut text = String::with_capacity(self.synthetic_capacity());
        let shared = self.push_prefix(&mut text);
        if !text.is_empty() {
            text.push(' ');
        }
        self.push_own(&mut text, shared);
        text
    }

    /// The prompt in two parts: the prefix shared by every item (empty without one) and
    /// the item's own part. Their words together are [`WorkItem::prompt_text`]'s.
    pub fn prompt_parts(&self) -> (String, String) {
        if let Some(prompt) = &self.prompt {
            return (String::new(), prompt.to_string());
        }
        let mut prefix = String::new();
        let shared = self.push_prefix(&mut prefix);
        let mut own = String::with_capacity(self.synthetic_capacity());
        self.push_own(&mut own, shared);
        (prefix, own)
    }

    /// Appends the shared prefix's words to `text`; returns how many there are.
    fn push_prefix(&self, text: &mut String) -> usize {
        let shared = self.shared_prefix.min(self.prompt_tokens.saturating_sub(1)) as usize;
        for k in 0..shared {
            if k > 0 {
                text.push(' ');
            }
            text.push_str(PROMPT_WORDS[k % PROMPT_WORDS.len()]);
        }
        shared
    }

    /// Appends the item's own part (after `shared` prefix words): its unique word, then
    /// filler. Pushed by pieces rather than formatted: this runs for every request.
    fn push_own(&self, text: &mut String, shared: usize) {
        text.push_str("item-");
        text.push_str(itoa::Buffer::new().format(self.index));
        filler::push(text, self.index, shared + 1, self.prompt_tokens as usize);
    }

    /// Room for a synthetic prompt, so it is built without growing: every word is at
    /// most 8 bytes and a space, and the unique word at most 15.
    fn synthetic_capacity(&self) -> usize {
        (self.prompt_tokens as usize)
            .saturating_mul(9)
            .saturating_add(16)
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

/// Reads the files the scenario names (relative to its folder) and sets up the work
/// items every strategy is offered. Called before a run and by `validate`, so a bad
/// prompt or trace row is reported before any traffic.
pub fn load(scenario: &Scenario) -> Result<WorkItems, WorkloadError> {
    let files = WorkloadFiles::read(scenario)?;
    let items = generate(scenario.workload(), files.trace, &files.prompts);
    if items.len() as u64 > MAX_REQUESTS {
        return Err(WorkloadError::TooMany);
    }
    Ok(items)
}

/// The files a scenario's workload names, read (relative to its folder): what
/// [`generate`] takes besides the configuration.
pub struct WorkloadFiles {
    pub prompts: Vec<Arc<str>>,
    pub trace: Option<Arc<[TraceRow]>>,
}

impl WorkloadFiles {
    pub fn read(scenario: &Scenario) -> Result<WorkloadFiles, WorkloadError> {
        let config = scenario.workload();
        let folder = scenario.folder();
        let prompts = match &config.prompts {
            Some(path) => prompts::load(&folder.join(path)).map_err(WorkloadError::Prompts)?,
            None => Vec::new(),
        };
        let trace = match &config.arrival {
            ArrivalConfig::Trace { path, time_scale } => Some(
                trace::load(&folder.join(path), time_scale.0)
                    .map_err(WorkloadError::Trace)?
                    .into(),
            ),
            _ => None,
        };
        Ok(WorkloadFiles { prompts, trace })
    }
}

/// The work items of a workload, in arrival order; the same seed always gives the same
/// items. With a trace, its rows give the times and lengths instead; with prompts, item
/// `i` asks prompt `i` (cycling), whose word count is its prompt length.
pub fn generate(
    config: &WorkloadConfig,
    trace: Option<Arc<[TraceRow]>>,
    prompts: &[Arc<str>],
) -> WorkItems {
    let (source, len) = match trace {
        Some(rows) => replay(config, rows),
        None => draw(config),
    };
    let first = ItemStream {
        source,
        index: 0,
        prompts: prompts.into(),
        shared_prefix: u32::try_from(config.shared_prefix_tokens.0).unwrap_or(u32::MAX),
        part: None,
    };
    WorkItems {
        len,
        first,
        index_end: len,
    }
}

/// The work items of a run, drawn from the seed as they are asked for rather than held
/// in a list, so that a run of any length holds none of them: a stream is a place in
/// the sequence, and a copy of it resumes there. Their count is known without drawing
/// them: from the walk through the arrival schedule that the lengths need anyway (or
/// the trace's rows), and a part's from the whole's.
#[derive(Clone)]
pub struct WorkItems {
    first: ItemStream,
    len: usize,
    /// One past the highest index of the whole sequence (a part's indices are sparse).
    index_end: usize,
}

impl WorkItems {
    pub fn len(&self) -> usize {
        self.len
    }

    /// One past the highest item index: what a table indexed by item must hold.
    pub fn index_end(&self) -> usize {
        self.index_end
    }

    /// Only the items whose index is `index` modulo `count` (a part of a sharded run),
    /// each at its time in the whole schedule.
    pub fn part(&self, index: u32, count: u32) -> WorkItems {
        let count = count.max(1);
        let mut first = self.first.clone();
        first.part = Some((index, count));
        // The whole sequence's indices are 0 to `len` - 1: this part's are every
        // `count`th from `index`.
        let (index, count) = (index as usize, count as usize);
        let len = match index < count {
            true => (self.len + count - 1 - index) / count,
            false => 0,
        };
        WorkItems {
            len,
            first,
            index_end: self.index_end,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every item from the first, drawn anew.
    pub fn iter(&self) -> ItemStream {
        self.first.clone()
    }

    /// The last item (drawn through the whole sequence: `validate` asks it once).
    pub fn last(&self) -> Option<WorkItem> {
        self.iter().last()
    }
}

/// Work items in order, drawn one at a time.
#[derive(Clone)]
pub struct ItemStream {
    source: Source,
    index: u32,
    prompts: Arc<[Arc<str>]>,
    /// Every item's `shared_prefix`.
    shared_prefix: u32,
    /// With a part of a sharded run, `(index, count)`: only items with an index of
    /// `index` modulo `count`.
    part: Option<(u32, u32)>,
}

/// Items drawn from the seed: times from the arrival schedule, lengths from the
/// generator the schedule left.
#[derive(Clone)]
struct Drawn {
    offsets: Offsets,
    lengths: ChaCha8Rng,
    prompt_tokens: TokenDistribution,
    max_tokens: TokenDistribution,
}

#[derive(Clone)]
enum Source {
    /// Times from the arrival schedule, then lengths from the generator the schedule
    /// left, one item after another.
    Drawn(Box<Drawn>),
    Replayed {
        rows: Arc<[TraceRow]>,
        end: usize,
    },
}

impl Iterator for ItemStream {
    type Item = WorkItem;

    fn next(&mut self) -> Option<WorkItem> {
        loop {
            let item = self.draw_next()?;
            if self
                .part
                .is_none_or(|(part, parts)| item.index % parts == part)
            {
                return Some(item);
            }
        }
    }
}

impl ItemStream {
    /// The next item of the whole sequence, whichever part it is.
    fn draw_next(&mut self) -> Option<WorkItem> {
        let index = self.index;
        let mut item = match &mut self.source {
            Source::Drawn(drawn) => {
                let at = drawn.offsets.next()?;
                WorkItem {
                    index,
                    prompt: None,
                    shared_prefix: self.shared_prefix,
                    at: Duration::from_secs_f64(at),
                    prompt_tokens: drawn.prompt_tokens.sample(&mut drawn.lengths),
                    max_tokens: drawn.max_tokens.sample(&mut drawn.lengths),
                }
            }
            Source::Replayed { rows, end } => {
                let row = rows[..*end].get(index as usize)?;
                WorkItem {
                    index,
                    prompt: None,
                    shared_prefix: self.shared_prefix,
                    at: row.at,
                    prompt_tokens: row.prompt_tokens,
                    max_tokens: row.output_tokens,
                }
            }
        };
        self.index = index.saturating_add(1);
        if !self.prompts.is_empty() {
            let prompt = self.prompts[index as usize % self.prompts.len()].clone();
            item.prompt_tokens = u32::try_from(prompt.split_whitespace().count())
                .unwrap_or(u32::MAX)
                .max(1);
            item.prompt = Some(prompt);
        }
        Some(item)
    }
}

/// The items drawn from the seed, and how many there are.
fn draw(config: &WorkloadConfig) -> (Source, usize) {
    // One past the most a run holds, so that a schedule drawing more is seen, not cut.
    let most = config.requests.map_or(MAX_REQUESTS + 1, |n| n.0);
    let offsets = config.arrival.offset_stream(
        Some(most),
        config.duration_s.map(|d| d.0),
        ChaCha8Rng::seed_from_u64(config.seed),
    );
    // The lengths come from the same generator after the whole schedule, as they did
    // when the items were drawn into a list: the same seed gives the same items. That
    // walk through the schedule counts the items too, one per arrival.
    let mut schedule = offsets.clone();
    let len = schedule.by_ref().count();
    let drawn = Drawn {
        offsets,
        lengths: schedule.into_rng(),
        prompt_tokens: config.prompt_tokens(),
        max_tokens: config.max_tokens(),
    };
    (Source::Drawn(Box::new(drawn)), len)
}

/// One item per trace row, within the workload's `requests` and `duration_s` bounds; and
/// how many there are.
fn replay(config: &WorkloadConfig, rows: Arc<[TraceRow]>) -> (Source, usize) {
    let limit = config.requests.map_or(usize::MAX, |n| n.get());
    let end = config.duration_s.map(|d| Duration::from_secs_f64(d.0));
    let end = rows
        .iter()
        .take_while(|row| end.is_none_or(|end| row.at < end))
        .take(limit)
        .count();
    (Source::Replayed { rows, end }, end)
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

    /// Every schedule, bounded by `requests`, `duration_s` or both (or by itself).
    fn schedules() -> Vec<WorkloadConfig> {
        use crate::scenario::{RampStage, Rate, Scale, Seconds};
        let arrivals = [
            ArrivalConfig::Constant { rate: Rate(40.0) },
            ArrivalConfig::Poisson { rate: Rate(40.0) },
            ArrivalConfig::Gamma {
                rate: Rate(40.0),
                burstiness: Scale(0.5),
            },
            ArrivalConfig::Bursts {
                size: RequestCount(7),
                interval_s: Seconds(0.1),
            },
        ];
        let bounds = [
            (Some(50), None),
            (Some(50), Some(0.3)),
            (Some(5), Some(10.0)),
            (None, Some(1.0)),
        ];
        let mut configs: Vec<WorkloadConfig> = arrivals
            .iter()
            .flat_map(|arrival| {
                bounds.iter().map(|&(requests, duration_s)| WorkloadConfig {
                    arrival: arrival.clone(),
                    requests: requests.map(RequestCount),
                    duration_s: duration_s.map(Seconds),
                    ..config(5)
                })
            })
            .collect();
        configs.push(config(5));
        let ramp = ArrivalConfig::Ramp {
            start_rate: 1.0,
            stages: vec![RampStage {
                rate: 30.0,
                duration_s: Seconds(2.0),
            }],
        };
        for requests in [None, Some(RequestCount(10))] {
            configs.push(WorkloadConfig {
                arrival: ramp.clone(),
                requests,
                ..config(5)
            });
        }
        configs
    }

    #[test]
    fn the_counts_agree_with_a_walk_for_every_schedule_trace_and_part() {
        let rows: Arc<[TraceRow]> = (0..40)
            .map(|k| TraceRow {
                at: Duration::from_millis(k * 50),
                prompt_tokens: 3,
                output_tokens: 4,
            })
            .collect();
        let mut drawn: Vec<WorkItems> = schedules()
            .iter()
            .map(|config| generate(config, None, &[]))
            .collect();
        for (requests, duration_s) in [(None, None), (Some(25), None), (None, Some(1.0))] {
            let config = WorkloadConfig {
                requests: requests.map(RequestCount),
                duration_s: duration_s.map(crate::scenario::Seconds),
                ..config(5)
            };
            drawn.push(generate(&config, Some(rows.clone()), &[]));
        }
        // Constant at 40/s: 12 in 0.3 s, 40 in 1 s; bursts of 7 every 0.1 s: 21 and 70;
        // the ramp from 1 to 30/s over 2 s: 31; the trace's rows every 50 ms: 20 in 1 s.
        // Poisson and gamma as seed 5 draws them.
        let counts: Vec<usize> = drawn.iter().map(WorkItems::len).collect();
        assert_eq!(
            counts,
            [
                50, 12, 5, 40, 50, 12, 5, 36, 50, 12, 5, 43, 50, 21, 5, 70, 50, 31, 10, 40, 25, 20
            ]
        );
        for items in &drawn {
            assert_eq!(items.len(), items.iter().count());
            for (part, parts) in [(0, 1), (0, 3), (1, 3), (2, 3), (6, 7), (7, 7)] {
                let part_items = items.part(part, parts);
                let walked: Vec<u32> = part_items.iter().map(|i| i.index).collect();
                assert_eq!(part_items.len(), walked.len(), "{part}/{parts}");
                assert!(walked.iter().all(|i| i % parts == part));
            }
        }
    }

    #[test]
    fn same_seed_same_items_other_seed_other_items() {
        let items = |seed| {
            generate(&config(seed), None, &[])
                .iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(items(1), items(1));
        assert_ne!(items(1), items(2));
    }

    #[test]
    fn a_shared_prefix_starts_every_prompt_and_keeps_its_length() {
        let mut config = config(4);
        config.shared_prefix_tokens = crate::scenario::TokenCount(3);
        let items: Vec<_> = generate(&config, None, &[]).iter().collect();
        let prefix = items[0].prompt_parts().0;
        assert_eq!(prefix, "alpha bravo charlie");
        for item in &items {
            let text = item.prompt_text();
            assert_eq!(text.split_whitespace().count(), item.prompt_tokens as usize);
            assert!(text.starts_with(&format!("{prefix} item-{} ", item.index)));
        }
    }

    #[test]
    fn synthetic_prompts_are_the_words_they_always_were() {
        let item = |index, prompt_tokens, shared_prefix| WorkItem {
            index,
            prompt: None,
            at: Duration::ZERO,
            prompt_tokens,
            max_tokens: 16,
            shared_prefix,
        };
        // The request of benches/peers.sh, which sends this body to oha too.
        assert_eq!(
            item(0, 16, 0).prompt_text(),
            "item-0 hotel oscar victor charlie juliett quebec xray echo lima sierra zulu golf november uniform bravo"
        );
        assert_eq!(item(41, 1, 0).prompt_text(), "item-41");
        assert_eq!(
            item(7, 5, 2).prompt_parts(),
            ("alpha bravo".into(), "item-7 charlie juliett".into())
        );
        assert_eq!(
            item(7, 5, 2).prompt_text(),
            "alpha bravo item-7 charlie juliett"
        );
        // A prefix never takes the item's own word.
        assert_eq!(item(3, 2, 9).prompt_text(), "alpha item-3");
        assert_eq!(item(3, 0, 0).prompt_text(), "item-3");
    }

    #[test]
    fn prompt_has_exactly_prompt_tokens_words() {
        for item in generate(&config(3), None, &[]).iter() {
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
