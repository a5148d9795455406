//! Recording while a strategy runs, without a global lock on the hot path.
//!
//! Each request owns a pre-allocated slot for its record (written once), inter-token
//! gaps go straight into one of several histogram shards chosen by the request's index
//! (so concurrent streams rarely touch the same lock and memory does not grow per
//! token), and live progress is a handful of atomics. E2E, TTFT and TPOT histograms and
//! the timeline are derived from the records afterwards.
//!
//! Reads the client's `Exchange` and the work items; knows nothing of strategies or
//! output formats.

mod record;
pub mod timeline;

/// Where each record goes the moment it is made, besides the recorder's own slot: the
/// results folder's `requests.csv`, written by a layer above through this trait, so that
/// a crash leaves every finished request on disk. Called once per request on the
/// request's own task: an implementation must not block.
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

use crate::client::Exchange;
use crate::workload::WorkItem;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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
    slots: Box<[OnceLock<RequestRecord>]>,
    gap_shards: Box<[Mutex<Histogram<u64>>]>,
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
    pub records: Vec<RequestRecord>,
    pub itl: Histogram<u64>,
    /// The strategy's limit over time, for strategies that keep one.
    pub limit: Option<timeline::LimitSeries>,
}

impl Recorder {
    pub fn new(items: usize, epoch: Instant, sink: Arc<dyn RecordSink>) -> Recorder {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shards = (workers * 4).min(items.max(1));
        Recorder {
            epoch,
            sink,
            slots: (0..items).map(|_| OnceLock::new()).collect(),
            gap_shards: (0..shards).map(|_| Mutex::new(new_histogram())).collect(),
            live: LiveCounters::default(),
            limit: Mutex::new(None),
        }
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

    /// Marks a request as in flight.
    pub fn sending(&self) {
        self.live.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A sink for the inter-token gaps of the request for `item`.
    pub fn gap_sink(&self, item: &WorkItem) -> impl FnMut(Duration) + '_ {
        let shard = &self.gap_shards[item.index as usize % self.gap_shards.len()];
        move |gap| {
            let mut histogram = shard.lock().unwrap_or_else(PoisonError::into_inner);
            histogram.saturating_record(micros(gap));
        }
    }

    /// Records a finished request (after [`Recorder::sending`]); `exchange` is its last
    /// attempt.
    pub fn finish(&self, slot: usize, item: &WorkItem, attempts: &Attempts, exchange: Exchange) {
        self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
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
        let record = RequestRecord {
            sent: Some(self.since_epoch(attempts.first_sent)),
            attempt_sent: Some(self.since_epoch(exchange.sent)),
            first_token: exchange.first_token.map(|t| self.since_epoch(t)),
            end: Some(self.since_epoch(exchange.end)),
            status: exchange.status,
            output_tokens: exchange.output_tokens,
            content_chunks: exchange.content_chunks,
            tokens_counted: exchange.tokens_counted,
            cached_tokens: exchange.cached_tokens,
            outcome,
            attempts: attempts.count,
            backoff: attempts.backoff,
            error,
            ..RequestRecord::unsent(item)
        };
        self.keep(slot, record);
    }

    /// Hands `record` to the sink and keeps it in its slot (once: a slot already set
    /// keeps its first record, and the sink sees each slot once).
    fn keep(&self, slot: usize, record: RequestRecord) {
        if self.slots[slot].set(record).is_ok()
            && let Some(kept) = self.slots[slot].get()
        {
            self.sink.record(kept);
        }
    }

    /// Records an item never sent, for `outcome` (`Dropped` or `OverBudget`).
    pub fn not_sent(&self, slot: usize, item: &WorkItem, outcome: Outcome) {
        self.live.dropped.fetch_add(1, Ordering::Relaxed);
        let record = RequestRecord {
            outcome,
            ..RequestRecord::unsent(item)
        };
        self.keep(slot, record);
    }

    /// Records a request cut off by an interrupt after it was sent, with the attempts
    /// it had made (the one cut off included) and the time it spent backing off.
    pub fn cancel_in_flight(&self, slot: usize, item: &WorkItem, attempts: &Attempts) {
        self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
        let record = RequestRecord {
            sent: Some(self.since_epoch(attempts.first_sent)),
            end: Some(self.since_epoch(Instant::now())),
            attempts: attempts.count.max(1),
            backoff: attempts.backoff,
            ..RequestRecord::unsent(item)
        };
        self.keep(slot, record);
    }

    /// Every record (items never recorded are recorded now, as never sent, and handed
    /// to the sink) and the merged ITL histogram. Called once the strategy has ended.
    pub fn recording(&self, items: &[WorkItem]) -> Recording {
        for (slot, item) in items.iter().enumerate() {
            self.keep(slot, RequestRecord::unsent(item));
        }
        let records = self
            .slots
            .iter()
            .filter_map(|slot| slot.get().cloned())
            .collect();
        let mut itl = new_histogram();
        for shard in &self.gap_shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            itl.add(&*shard)
                .expect("shards share the histogram's bounds");
        }
        let limit = self
            .limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Recording {
            records,
            itl,
            limit,
        }
    }
}
