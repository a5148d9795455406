//! Timeline of a strategy in fixed-width buckets (one second by default), derived from
//! its records.

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

/// One bucket per `width` from the start to the last response.
pub fn timeline(records: &[RequestRecord], width: Duration) -> Vec<TimelineBucket> {
    let width = width.max(Duration::from_micros(1));
    let bucket_of = |t: Duration| (t.as_nanos() / width.as_nanos()) as usize;
    let last_end = records
        .iter()
        .filter_map(|r| r.end)
        .max()
        .unwrap_or_default();
    let mut rows: Vec<TimelineBucket> = (0..=bucket_of(last_end))
        .map(|i| TimelineBucket {
            start: width * i as u32,
            ..TimelineBucket::default()
        })
        .collect();
    for record in records {
        let Some(end) = record.end else { continue };
        let row = &mut rows[bucket_of(end)];
        match record.outcome {
            Outcome::Ok => row.completed += 1,
            Outcome::Failed(ErrorClass::RateLimited) => row.rate_limited += 1,
            _ => row.failed += 1,
        }
    }
    fill_peak_in_flight(records, &mut rows, bucket_of);
    rows
}

/// Sweeps send (+1) and end (−1) events in time order; a bucket with no events keeps
/// the level it started with.
fn fill_peak_in_flight(
    records: &[RequestRecord],
    rows: &mut [TimelineBucket],
    bucket_of: impl Fn(Duration) -> usize,
) {
    let mut events: Vec<(Duration, i64)> = records
        .iter()
        .filter_map(|r| Some([(r.sent?, 1), (r.end?, -1)]))
        .flatten()
        .collect();
    // At equal times ends come first: a slot freed and refilled is not two in flight.
    events.sort_unstable();
    let mut level: i64 = 0;
    let mut current = 0usize;
    for (at, delta) in events {
        let bucket = bucket_of(at).min(rows.len() - 1);
        while current < bucket {
            current += 1;
            rows[current].peak_in_flight = level as u64;
        }
        level += delta;
        let row = &mut rows[bucket];
        row.peak_in_flight = row.peak_in_flight.max(level.max(0) as u64);
    }
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
