//! Recording while a strategy runs, without a global lock on the hot path, in memory
//! that does not grow with the request count.
//!
//! Each finished request's record is handed to the sink (`requests.csv`) and added to
//! one of several tally shards chosen by the request's index, where its inter-token
//! gaps go too (so concurrent streams rarely touch the same lock); then it is let go.
//! What stays is histograms and counts ([`Tally`]), the timeline's ticks, one bit per
//! item (recorded or not: 1.25 MB for ten million) and live progress in a handful of
//! atomics.
//!
//! Each record is also judged against the run's `[slo]` as it is added, so a capacity
//! probe's goodput is counted here rather than read back from `requests.csv`.
//!
//! Reads the client's `Exchange`, the work items and the objectives; knows nothing of
//! strategies or output formats.

mod record;
mod tally;
pub mod timeline;

/// Where each record goes the moment it is made (the recorder keeps only its tally): the
/// results folder's `requests.csv`, written by a layer above through this trait, so that
/// a crash leaves every finished request on disk. Called once per request on the
/// request's own task: an implementation must not block on I/O; it may hold the task
/// back only as backpressure, when the records it has not yet written are too many.
pub trait RecordSink: Send + Sync {
    fn record(&self, record: &RequestRecord);
}

/// A sink that keeps nothing (benchmarks, tests of the recorder alone).
pub struct NoSink;

impl RecordSink for NoSink {
    fn record(&self, _: &RequestRecord) {}
}

pub use crate::client::ErrorClass;
pub use record::{Outcome, RequestRecord};
pub use tally::{CopyCounts, Tally};

use crate::client::Exchange;
use crate::scenario::SloConfig;
use crate::workload::{WorkItem, WorkItems};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Largest latency recorded exactly: one hour, in microseconds.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("bounds are valid")
}

/// Microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts the monitor reads while a strategy runs.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub in_flight: AtomicU64,
    pub ok: AtomicU64,
    pub rate_limited: AtomicU64,
    pub failed: AtomicU64,
    /// Items never sent (dropped from a full queue, or over budget).
    pub dropped: AtomicU64,
}

impl LiveCounters {
    /// Items that are done with: answered, failed or dropped.
    pub fn finished(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.rate_limited.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed)
    }
}

pub struct Recorder {
    epoch: Instant,
    sink: Arc<dyn RecordSink>,
    /// What each record is judged against as it is added (the tally's `good`).
    slo: SloConfig,
    /// One bit per work item, set when its record is made: each item is recorded once,
    /// and those never recorded are found at the end.
    recorded: Box<[AtomicU64]>,
    shards: Box<[Mutex<Tally>]>,
    ticks: Mutex<timeline::Ticks>,
    live: LiveCounters,
    /// The limit a strategy keeps, if it keeps one (changes rarely: a lock is fine).
    limit: Mutex<Option<timeline::LimitSeries>>,
}

/// How a request's attempts went, for its record.
#[derive(Debug, Clone, Copy)]
pub struct Attempts {
    pub first_sent: Instant,
    pub count: u32,
    /// Total time spent waiting between attempts.
    pub backoff: Duration,
}

/// What a finished (or interrupted) strategy leaves behind.
pub struct Recording {
    pub tally: Tally,
    pub ticks: timeline::Ticks,
    /// The strategy's limit over time, for strategies that keep one.
    pub limit: Option<timeline::LimitSeries>,
}

impl Recorder {
    /// A recorder for `items` work items dealt to `copies` copies of a strategy, judging
    /// each request against `slo` as it is recorded. Its
    /// histograms are allocated here, before the strategy's zero ([`Recorder::starting_at`]),
    /// so that their cost does not delay the first items.
    pub fn new(items: usize, copies: usize, slo: SloConfig, sink: Arc<dyn RecordSink>) -> Recorder {
        let epoch = Instant::now();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shards = (workers * 4).min(items.max(1));
        Recorder {
            epoch,
            sink,
            slo,
            recorded: (0..items.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            shards: (0..shards)
                .map(|_| Mutex::new(Tally::new(copies)))
                .collect(),
            ticks: Mutex::new(timeline::Ticks::default()),
            live: LiveCounters::default(),
            limit: Mutex::new(None),
        }
    }

    /// The recorder with its times measured from `epoch`, the strategy's zero.
    pub fn starting_at(self, epoch: Instant) -> Recorder {
        Recorder { epoch, ..self }
    }

    /// The strategy's zero.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Records the strategy's limit now in effect (kept only when it changes).
    pub fn limit(&self, unit: timeline::LimitUnit, value: f64) {
        let at = self.since_epoch(Instant::now());
        let mut series = self.limit.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .get_or_insert_with(|| timeline::LimitSeries {
                unit,
                points: Vec::new(),
            })
            .push(at, value);
    }

    pub fn live(&self) -> &LiveCounters {
        &self.live
    }

    fn since_epoch(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.epoch)
    }

    fn shard(&self, item: &WorkItem) -> &Mutex<Tally> {
        &self.shards[item.index as usize % self.shards.len()]
    }

    fn ticks(&self) -> std::sync::MutexGuard<'_, timeline::Ticks> {
        self.ticks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request as in flight from now, its first send; returns now.
    pub fn sending(&self) -> Instant {
        let now = Instant::now();
        let level = self.live.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.ticks().sent(self.since_epoch(now), level);
        now
    }

    /// One request fewer in flight, since it ended at `end` with `outcome`.
    fn ended(&self, end: Duration, outcome: Outcome) {
        let level = self.live.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        self.ticks().ended(end, outcome, level);
    }

    /// A sink for the inter-token gaps of the request for `item`.
    pub fn gap_sink(&self, item: &WorkItem) -> impl FnMut(Duration) + '_ {
        let shard = self.shard(item);
        move |gap| {
            let mut tally = shard.lock().unwrap_or_else(PoisonError::into_inner);
            tally.itl.saturating_record(micros(gap));
        }
    }

    /// Records a finished request (after [`Recorder::sending`]); `exchange` is its last
    /// attempt.
    pub fn finish(&self, item: &WorkItem, attempts: &Attempts, exchange: Exchange) {
        let (outcome, error) = match exchange.error {
            None => (Outcome::Ok, None),
            Some((class, message)) => (Outcome::Failed(class), Some(message)),
        };
        let counter = match outcome {
            Outcome::Ok => &self.live.ok,
            Outcome::Failed(ErrorClass::RateLimited) => &self.live.rate_limited,
            _ => &self.live.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let end = self.since_epoch(exchange.end);
        self.ended(end, outcome);
        let record = RequestRecord {
            sent: Some(self.since_epoch(attempts.first_sent)),
            attempt_sent: Some(self.since_epoch(exchange.sent)),
            first_token: exchange.first_token.map(|t| self.since_epoch(t)),
            end: Some(end),
            status: exchange.status,
            output_tokens: exchange.output_tokens,
            content_chunks: exchange.content_chunks,
            tokens_counted: exchange.tokens_counted,
            cached_tokens: exchange.cached_tokens,
            connect: exchange.connect,
            outcome,
            attempts: attempts.count,
            backoff: attempts.backoff,
            error,
            ..RequestRecord::unsent(item)
        };
        self.keep(item, &record);
    }

    /// Adds `record` to the tally and hands it to the sink, once per item: a record for
    /// an item already recorded is ignored.
    fn keep(&self, item: &WorkItem, record: &RequestRecord) {
        let index = item.index as usize;
        let bit = 1u64 << (index % 64);
        let Some(word) = self.recorded.get(index / 64) else {
            return;
        };
        if word.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return;
        }
        self.shard(item)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(record, &self.slo);
        self.sink.record(record);
    }

    fn is_recorded(&self, index: u32) -> bool {
        let index = index as usize;
        self.recorded
            .get(index / 64)
            .is_some_and(|word| word.load(Ordering::Acquire) & (1 << (index % 64)) != 0)
    }

    /// Records an item never sent, for `outcome` (`Dropped` or `OverBudget`).
    pub fn not_sent(&self, item: &WorkItem, outcome: Outcome) {
        self.live.dropped.fetch_add(1, Ordering::Relaxed);
        let record = RequestRecord {
            outcome,
            ..RequestRecord::unsent(item)
        };
        self.keep(item, &record);
    }

    /// Records a request cut off by an interrupt after it was sent, with the attempts
    /// it had made (the one cut off included) and the time it spent backing off.
    pub fn cancel_in_flight(&self, item: &WorkItem, attempts: &Attempts) {
        let end = self.since_epoch(Instant::now());
        self.ended(end, Outcome::Cancelled);
        let record = RequestRecord {
            sent: Some(self.since_epoch(attempts.first_sent)),
            end: Some(end),
            attempts: attempts.count.max(1),
            backoff: attempts.backoff,
            ..RequestRecord::unsent(item)
        };
        self.keep(item, &record);
    }

    /// The tally of every record (items never recorded are recorded now, as never sent,
    /// and handed to the sink), with the timeline and the limit series. Called once the
    /// strategy has ended.
    pub fn recording(&self, items: &WorkItems) -> Recording {
        let all = items.len();
        let recorded: u64 = self
            .recorded
            .iter()
            .map(|word| u64::from(word.load(Ordering::Acquire).count_ones()))
            .sum();
        if recorded < all as u64 {
            for item in items.iter().filter(|item| !self.is_recorded(item.index)) {
                self.keep(&item, &RequestRecord::unsent(&item));
            }
        }
        let mut tally = Tally::new(
            self.shards[0]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_copy
                .len(),
        );
        for shard in &self.shards {
            tally.merge(&shard.lock().unwrap_or_else(PoisonError::into_inner));
        }
        let limit = self
            .limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Recording {
            tally,
            ticks: self.ticks().clone(),
            limit,
        }
    }
}
