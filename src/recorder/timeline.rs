//! Timeline of a strategy in fixed-width buckets, summed from fine ticks recorded as
//! requests are sent and end.

use super::{ErrorClass, Outcome, RequestRecord};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a strategy's limit series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitUnit {
    /// Requests in flight (an adaptive limit).
    InFlight,
    /// Requests per second (a limiter's rate).
    PerSecond,
}

/// The limit a strategy had in effect over its run, as it changed: `(seconds since the
/// start, value)` at each change, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitSeries {
    pub unit: LimitUnit,
    pub points: Vec<(f64, f64)>,
}

impl LimitSeries {
    /// Most changes kept: a change a second for five hours. Past it, the last point
    /// takes each new change, so the series ends at the value in effect.
    pub const MAX_POINTS: usize = 20_000;

    /// Appends a change at `at`; a value equal to the last one is not a change.
    pub fn push(&mut self, at: Duration, value: f64) {
        let changed = self.points.last().is_none_or(|&(_, last)| last != value);
        if !changed {
            return;
        }
        if self.points.len() >= Self::MAX_POINTS {
            self.points.pop();
        }
        self.points.push((at.as_secs_f64(), value));
    }

    /// The value in effect at `at` (seconds since the start); `None` before the first.
    pub fn at(&self, at: f64) -> Option<f64> {
        let after = self.points.partition_point(|&(t, _)| t <= at);
        after.checked_sub(1).map(|i| self.points[i].1)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimelineBucket {
    /// Start of the bucket since the strategy started; it covers `[start, start + width)`.
    pub start: Duration,
    /// Requests that completed successfully in this bucket.
    pub completed: u64,
    pub rate_limited: u64,
    /// Failures other than 429, and cancellations.
    pub failed: u64,
    /// The most requests in flight at any moment of this bucket.
    pub peak_in_flight: u64,
    /// The strategy's limit in effect at the end of this bucket, for those that keep a
    /// [`LimitSeries`].
    pub limit: Option<f64>,
}

/// Fills each bucket's `limit` from `series`: the value in effect at the bucket's end.
pub fn fill_limit(rows: &mut [TimelineBucket], series: &LimitSeries, width: Duration) {
    for row in rows {
        row.limit = series.at((row.start + width).as_secs_f64());
    }
}

/// The finest a timeline is kept: every width a chart picks (10 ms, 20 ms, 50 ms, …)
/// is a multiple of it.
pub const TICK: Duration = Duration::from_millis(10);
/// Most ticks kept: past it the tick doubles (neighbours merged), so a run of any
/// length keeps a timeline of bounded size.
const MAX_TICKS: usize = 8192;

#[derive(Debug, Clone, Default, PartialEq)]
struct Tick {
    completed: u64,
    rate_limited: u64,
    failed: u64,
    peak_in_flight: u64,
    /// Sends and ends in the tick, for a timeline rebuilt from records.
    sends: u64,
    ends: u64,
}

/// A strategy's timeline in fine ticks, from which buckets of any width are summed.
/// Recorded live ([`Ticks::sent`], [`Ticks::ended`]), its peaks in flight are exact:
/// each send reports the level it leaves. Rebuilt from saved records, in any order
/// ([`Ticks::replay`], then [`Ticks::settle`]), a tick's peak is the most of its level
/// at its start and at its end, and at least 1 when it saw a send: exact unless
/// requests both start and end within one tick while others are in flight.
#[derive(Debug, Clone)]
pub struct Ticks {
    width: Duration,
    ticks: Vec<Tick>,
    /// Requests in flight after the last event (live).
    level: u64,
}

impl Default for Ticks {
    fn default() -> Ticks {
        Ticks {
            width: TICK,
            ticks: Vec::new(),
            level: 0,
        }
    }
}

impl Ticks {
    /// The tick holding `at`; ticks added on the way start at the level then in flight
    /// (a quiet tick keeps the level it started with).
    fn tick(&mut self, at: Duration) -> &mut Tick {
        let mut i = (at.as_nanos() / self.width.as_nanos()) as usize;
        while i >= MAX_TICKS {
            self.coarsen();
            i = (at.as_nanos() / self.width.as_nanos()) as usize;
        }
        while self.ticks.len() <= i {
            self.ticks.push(Tick {
                peak_in_flight: self.level,
                ..Tick::default()
            });
        }
        &mut self.ticks[i]
    }

    fn coarsen(&mut self) {
        self.width *= 2;
        self.ticks = self
            .ticks
            .chunks(2)
            .map(|pair| {
                pair.iter().fold(Tick::default(), |a, b| Tick {
                    completed: a.completed + b.completed,
                    rate_limited: a.rate_limited + b.rate_limited,
                    failed: a.failed + b.failed,
                    peak_in_flight: a.peak_in_flight.max(b.peak_in_flight),
                    sends: a.sends + b.sends,
                    ends: a.ends + b.ends,
                })
            })
            .collect();
    }

    /// A request was sent at `at`, leaving `in_flight` requests in flight.
    pub fn sent(&mut self, at: Duration, in_flight: u64) {
        let tick = self.tick(at);
        tick.peak_in_flight = tick.peak_in_flight.max(in_flight);
        self.level = in_flight;
    }

    /// A request ended at `at` with `outcome`, leaving `in_flight` requests in flight.
    pub fn ended(&mut self, at: Duration, outcome: Outcome, in_flight: u64) {
        let tick = self.tick(at);
        match outcome {
            Outcome::Ok => tick.completed += 1,
            Outcome::Failed(ErrorClass::RateLimited) => tick.rate_limited += 1,
            _ => tick.failed += 1,
        }
        self.level = in_flight;
    }

    /// Adds a saved record; [`Ticks::settle`] once all are in.
    pub fn replay(&mut self, record: &RequestRecord) {
        let (Some(sent), Some(end)) = (record.sent, record.end) else {
            return;
        };
        self.tick(sent).sends += 1;
        self.ended(end, record.outcome, 0);
        self.tick(end).ends += 1;
    }

    /// Derives each tick's peak in flight from the sends and ends replayed.
    pub fn settle(&mut self) {
        let mut level = 0u64;
        for tick in &mut self.ticks {
            let start = level;
            level = (level + tick.sends).saturating_sub(tick.ends);
            tick.peak_in_flight = start.max(level).max(tick.sends.min(1));
        }
    }

    /// One bucket per `width` (at least a tick) from the start to the last event.
    pub fn buckets(&self, width: Duration) -> Vec<TimelineBucket> {
        let width = width.max(self.width);
        let bucket_of = |i: usize| (i as u128 * self.width.as_nanos() / width.as_nanos()) as usize;
        let count = self
            .ticks
            .len()
            .checked_sub(1)
            .map_or(1, |last| bucket_of(last) + 1);
        let mut rows: Vec<TimelineBucket> = (0..count)
            .map(|b| TimelineBucket {
                start: width * b as u32,
                ..TimelineBucket::default()
            })
            .collect();
        for (i, tick) in self.ticks.iter().enumerate() {
            let row = &mut rows[bucket_of(i)];
            row.completed += tick.completed;
            row.rate_limited += tick.rate_limited;
            row.failed += tick.failed;
            row.peak_in_flight = row.peak_in_flight.max(tick.peak_in_flight);
        }
        rows
    }
}

/// One bucket per `width` from records in any order (a saved strategy's).
pub fn timeline<'a>(
    records: impl IntoIterator<Item = &'a RequestRecord>,
    width: Duration,
) -> Vec<TimelineBucket> {
    let mut ticks = Ticks::default();
    for record in records {
        ticks.replay(record);
    }
    ticks.settle();
    ticks.buckets(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkItem;

    fn record(sent_ms: u64, end_ms: u64, outcome: Outcome) -> RequestRecord {
        let item = WorkItem {
            index: 0,
            prompt: None,
            at: Duration::ZERO,
            prompt_tokens: 1,
            max_tokens: 1,
            shared_prefix: 0,
        };
        RequestRecord {
            sent: Some(Duration::from_millis(sent_ms)),
            end: Some(Duration::from_millis(end_ms)),
            outcome,
            ..RequestRecord::unsent(&item)
        }
    }

    #[test]
    fn counts_by_end_second_and_tracks_peak_in_flight() {
        let records = [
            record(0, 500, Outcome::Ok),
            record(100, 2_500, Outcome::Ok),
            record(200, 300, Outcome::Failed(ErrorClass::RateLimited)),
            record(1_200, 1_300, Outcome::Failed(ErrorClass::Timeout)),
            record(2_600, 2_700, Outcome::Ok),
        ];
        let rows = timeline(&records, Duration::from_secs(1));
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.completed, r.rate_limited, r.failed, r.peak_in_flight))
            .collect();
        // Second 0: three start, peak 3. Second 1: the long one plus one more (2).
        // Second 2: the long one, then a new one after it ended (1).
        assert_eq!(summary, vec![(1, 1, 0, 3), (0, 0, 1, 2), (2, 0, 0, 1)]);
    }

    #[test]
    fn quiet_seconds_keep_the_level_in_flight() {
        let rows = timeline(&[record(0, 3_500, Outcome::Ok)], Duration::from_secs(1));
        let peaks: Vec<_> = rows.iter().map(|r| r.peak_in_flight).collect();
        assert_eq!(peaks, vec![1, 1, 1, 1]);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn a_limit_series_keeps_changes_and_answers_the_value_in_effect() {
        let mut series = LimitSeries {
            unit: LimitUnit::InFlight,
            points: Vec::new(),
        };
        for (ms, value) in [(0, 4.0), (100, 4.0), (250, 8.0), (1_500, 4.0)] {
            series.push(Duration::from_millis(ms), value);
        }
        assert_eq!(series.points, vec![(0.0, 4.0), (0.25, 8.0), (1.5, 4.0)]);
        assert_eq!(series.at(0.2), Some(4.0));
        assert_eq!(series.at(1.0), Some(8.0));
        assert_eq!(series.at(9.0), Some(4.0));
        let mut rows = vec![
            TimelineBucket::default(),
            TimelineBucket {
                start: Duration::from_secs(1),
                ..TimelineBucket::default()
            },
        ];
        fill_limit(&mut rows, &series, Duration::from_secs(1));
        let limits: Vec<_> = rows.iter().map(|r| r.limit).collect();
        assert_eq!(limits, vec![Some(8.0), Some(4.0)]);
    }
}

#[cfg(test)]
mod width_tests {
    use super::*;

    #[test]
    fn sub_second_buckets() {
        let item = crate::workload::WorkItem {
            index: 0,
            prompt: None,
            at: Duration::ZERO,
            prompt_tokens: 1,
            max_tokens: 1,
            shared_prefix: 0,
        };
        let record = RequestRecord {
            sent: Some(Duration::from_millis(50)),
            end: Some(Duration::from_millis(250)),
            outcome: Outcome::Ok,
            ..RequestRecord::unsent(&item)
        };
        let rows = timeline(&[record], Duration::from_millis(100));
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.start.as_millis(), r.completed, r.peak_in_flight))
            .collect();
        assert_eq!(summary, vec![(0, 0, 1), (100, 0, 1), (200, 1, 1)]);
    }
}
