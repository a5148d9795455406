//! Per strategy, over time: successful completions, 429s and other failures per second
//! (left, with a `rate` strategy's limiter rate) and the most requests in flight
//! (right, with an `adaptive` strategy's limit). Shows when a rate limit starts to
//! bite and how concurrency rises and drains. Buckets are sized to the run (about 60
//! of them, at a round width), so a two-second run is as readable as an hour.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{Axes, axis_number, color, draw_legend, legend_line, linear_panel};
use crate::recorder::timeline::{LimitSeries, LimitUnit, TimelineBucket};
use crate::report::saved::SavedRun;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::time::Duration;

/// `timeline`.
pub struct Timeline;

impl Chart for Timeline {
    fn file_stem(&self) -> &'static str {
        "timeline"
    }

    fn title(&self) -> &'static str {
        "Timeline per strategy"
    }

    fn applies(&self, run: &SavedRun) -> bool {
        !run.strategies.is_empty()
    }

    fn size(&self, run: &SavedRun) -> (u32, u32) {
        (1400, 40 + 260 * run.strategies.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw(run, area)
    }
}

/// The smallest round width giving at most about 60 buckets over `span_s` seconds.
fn bucket_width(span_s: f64) -> Duration {
    const ROUND: [f64; 14] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
    ];
    let wanted = span_s / 60.0;
    let width = ROUND.into_iter().find(|w| *w >= wanted).unwrap_or(3600.0);
    Duration::from_secs_f64(width)
}

const OK: RGBColor = RGBColor(0, 158, 115);
const LIMITED: RGBColor = RGBColor(230, 159, 0);
const FAILED: RGBColor = RGBColor(213, 94, 0);
const LIMIT: RGBColor = RGBColor(0, 0, 0);

/// The series as a step line from its first change to `until` seconds.
fn steps(series: &LimitSeries, until: f64) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(series.points.len() * 2 + 1);
    for &(at, value) in &series.points {
        if let Some(&(_, last)) = points.last() {
            points.push((at, last));
        }
        points.push((at, value));
    }
    if let Some(&(at, last)) = points.last()
        && at < until
    {
        points.push((until, last));
    }
    points
}

fn draw<DB: DrawingBackend>(
    run: &SavedRun,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let rows = area.split_evenly((run.strategies.len().max(1), 2));
    for (i, strategy) in run.strategies.iter().enumerate() {
        // Each strategy its own width: a 2 s strategy beside a 2 min one stays readable.
        let width = bucket_width(strategy.summary.makespan_s);
        let per_second = 1.0 / width.as_secs_f64();
        let timeline = strategy.timeline(width);
        let seconds = (timeline.len() as f64 * width.as_secs_f64()).max(width.as_secs_f64());
        let at = |f: fn(&TimelineBucket) -> u64, scale: f64| -> Vec<(f64, f64)> {
            timeline
                .iter()
                .map(|t| (t.start.as_secs_f64(), f(t) as f64 * scale))
                .collect()
        };
        let series = strategy.summary.limit_series.as_ref();
        let limit_of = |unit: LimitUnit| {
            series
                .filter(|s| s.unit == unit)
                .map(|s| steps(s, seconds))
                .unwrap_or_default()
        };
        let lines = [
            ("completed/s", OK, at(|t| t.completed, per_second)),
            ("429/s", LIMITED, at(|t| t.rate_limited, per_second)),
            ("other failures/s", FAILED, at(|t| t.failed, per_second)),
            ("limiter rate/s", LIMIT, limit_of(LimitUnit::PerSecond)),
        ];
        let y_max = lines
            .iter()
            .flat_map(|l| l.2.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.15;
        let title = format!(
            "{}: responses per second ({} buckets)",
            strategy.label(),
            humantime::format_duration(width)
        );
        let axes = |y_max: f64| Axes {
            x: 0.0..seconds,
            y: 0.0..y_max,
            x_desc: "seconds since start",
            y_desc: "",
            x_label: axis_number,
            y_label: axis_number,
        };
        let mut chart = linear_panel(&rows[2 * i], &title, axes(y_max))?;
        for (label, line_color, points) in lines {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points, line_color.stroke_width(2)))?
                .label(label)
                .legend(legend_line(line_color));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;

        let in_flight = at(|t| t.peak_in_flight, 1.0);
        let limit = limit_of(LimitUnit::InFlight);
        let y_max = in_flight
            .iter()
            .chain(&limit)
            .map(|p| p.1)
            .fold(1.0f64, f64::max)
            * 1.15;
        let title = format!("{}: requests in flight (peak per bucket)", strategy.label());
        let mut chart = linear_panel(&rows[2 * i + 1], &title, axes(y_max))?;
        let in_flight_color = color(i);
        chart
            .draw_series(LineSeries::new(in_flight, in_flight_color.stroke_width(2)))?
            .label("in flight")
            .legend(legend_line(in_flight_color));
        if !limit.is_empty() {
            chart
                .draw_series(LineSeries::new(limit, LIMIT.stroke_width(1)))?
                .label("adaptive limit")
                .legend(legend_line(LIMIT));
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bucket_width;
    use std::time::Duration;

    #[test]
    fn a_limit_series_is_drawn_as_steps_to_the_end() {
        use super::{LimitSeries, LimitUnit, steps};
        let series = LimitSeries {
            unit: LimitUnit::InFlight,
            points: vec![(0.0, 4.0), (1.0, 8.0)],
        };
        assert_eq!(
            steps(&series, 3.0),
            vec![(0.0, 4.0), (1.0, 4.0), (1.0, 8.0), (3.0, 8.0)]
        );
    }

    #[test]
    fn buckets_fit_the_run() {
        assert_eq!(bucket_width(0.35), Duration::from_millis(10));
        assert_eq!(bucket_width(31.5), Duration::from_millis(1000));
        assert_eq!(bucket_width(125.0), Duration::from_secs(5));
    }
}
