//! Each strategy as a point: throughput (up is better) against p99 end-to-end latency
//! (left is better), once for requests and once for output tokens per second.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{Axes, axis_number, color, draw_legend, linear_panel};
use crate::metric::Metric;
use crate::report::saved::SavedRun;
use crate::summary::StrategySummary;
use plotters::coord::Shift;
use plotters::prelude::*;

/// `throughput-vs-p99`.
pub struct Tradeoff;

impl Chart for Tradeoff {
    fn file_stem(&self) -> &'static str {
        "throughput-vs-p99"
    }

    fn title(&self) -> &'static str {
        "Throughput against p99 latency"
    }

    fn applies(&self, run: &SavedRun) -> bool {
        run.has_spectrum(Metric::E2e)
    }

    fn size(&self, _: &SavedRun) -> (u32, u32) {
        (1400, 520)
    }

    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw(run, area)
    }
}

type Throughput = fn(&StrategySummary) -> f64;

fn draw<DB: DrawingBackend>(
    run: &SavedRun,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let panels = area.split_evenly((1, 2));
    let views: [(&str, &str, Throughput); 2] = [
        ("Requests per second", "successful req/s", |s| {
            s.requests_per_s
        }),
        ("Output tokens per second", "output tok/s", |s| {
            s.output_tokens_per_s
        }),
    ];
    let points: Vec<(usize, &StrategySummary, f64)> = run
        .strategies
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, &s.summary, s.summary.latency(Metric::E2e)?.p99)))
        .collect();
    let x_max = points.iter().map(|p| p.2).fold(1.0f64, f64::max) * 1.25;
    for ((title, y_desc, value), panel) in views.into_iter().zip(panels.iter()) {
        let y_max = points.iter().map(|p| value(p.1)).fold(0.001f64, f64::max) * 1.25;
        let y_desc = format!("{y_desc} — up is better");
        let axes = Axes {
            x: 0.0..x_max,
            y: 0.0..y_max,
            x_desc: "E2E p99 (ms) — left is better",
            y_desc: &y_desc,
            x_label: axis_number,
            y_label: axis_number,
        };
        let mut chart = linear_panel(panel, &format!("{title} vs E2E p99"), axes)?;
        // One series per strategy, named in the legend: labels beside the points would
        // collide when strategies land close together.
        for &(i, s, p99) in &points {
            let style = color(i).filled();
            chart
                .draw_series(std::iter::once(Circle::new((p99, value(s)), 8, style)))?
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}
