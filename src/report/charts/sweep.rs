//! A concurrency sweep (`limit = [1, 2, 4, …]`) as the classic knee chart: throughput
//! and latency against the in-flight limit. Throughput that stops growing while latency
//! climbs is the server full; the limit at the bend is the one to run at.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{Axes, axis_number, color, draw_legend, legend_line, linear_panel};
use crate::metric::Metric;
use crate::report::saved::SavedRun;
use crate::summary::StrategySummary;
use plotters::coord::Shift;
use plotters::prelude::*;

/// `concurrency-sweep`.
pub struct ConcurrencySweep;

impl Chart for ConcurrencySweep {
    fn file_stem(&self) -> &'static str {
        "concurrency-sweep"
    }

    fn title(&self) -> &'static str {
        "Throughput and latency by concurrency limit"
    }

    fn applies(&self, run: &SavedRun) -> bool {
        !sweeps(run).is_empty()
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

/// The fewest limits that make a sweep worth a chart.
const MIN_POINTS: usize = 3;

/// Strategies that differ only in their limit, in limit order.
struct Sweep<'a> {
    /// Colour index: the first strategy's position in the run.
    index: usize,
    /// Kind, runtime and HTTP client: what the strategies share.
    key: String,
    /// The legend's name: the kind, or the whole key where two sweeps share a kind.
    name: String,
    points: Vec<&'a StrategySummary>,
}

/// The run's sweeps: strategies grouped by kind, runtime and HTTP client, each group
/// with at least three distinct limits.
fn sweeps(run: &SavedRun) -> Vec<Sweep<'_>> {
    let mut groups: Vec<Sweep> = Vec::new();
    for (i, s) in run.strategies.iter().enumerate() {
        let s = &s.summary;
        if s.limit.is_none() {
            continue;
        }
        let key = format!("{} ({}, {})", s.kind, s.runtime, s.client);
        match groups.iter_mut().find(|g| g.key == key) {
            Some(group) => group.points.push(s),
            None => groups.push(Sweep {
                index: i,
                key,
                name: s.kind.clone(),
                points: vec![s],
            }),
        }
    }
    groups.retain_mut(|g| {
        g.points.sort_by_key(|s| s.limit);
        g.points.dedup_by_key(|s| s.limit);
        g.points.len() >= MIN_POINTS
    });
    let kinds: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    for g in &mut groups {
        if kinds.iter().filter(|k| **k == g.name).count() > 1 {
            g.name = g.key.clone();
        }
    }
    groups
}

/// log2 of a strategy's limit: the x position (limits double in a typical sweep).
fn x(s: &StrategySummary) -> f64 {
    (s.limit.unwrap_or(1) as f64).log2()
}

/// An x label: the limit at a whole log2 position ("1", "8"); none between them.
fn limit_label(v: &f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        return String::new();
    }
    axis_number(&2f64.powf(v.round()))
}

fn draw<DB: DrawingBackend>(
    run: &SavedRun,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let sweeps = sweeps(run);
    let all = || sweeps.iter().flat_map(|g| g.points.iter().copied());
    let x_max = all().map(x).fold(1.0, f64::max);
    let x_range = -0.3..x_max + 0.3;
    let panels = area.split_evenly((1, 2));

    let y_max = all().map(|s| s.requests_per_s).fold(0.001, f64::max) * 1.2;
    let axes = Axes {
        x: x_range.clone(),
        y: 0.0..y_max,
        x_desc: "in-flight limit (log scale)",
        x_label: limit_label,
        y_desc: "successful req/s — up is better",
        y_label: axis_number,
    };
    let mut chart = linear_panel(&panels[0], "Throughput by concurrency limit", axes)?;
    for g in &sweeps {
        let style = color(g.index);
        let points: Vec<(f64, f64)> = g.points.iter().map(|s| (x(s), s.requests_per_s)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style.stroke_width(3)))?
            .label(g.name.clone())
            .legend(legend_line(style));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 6, style.filled())),
        )?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

    draw_latency(&sweeps, &panels[1], x_range)
}

type Percentile = fn(&StrategySummary) -> Option<f64>;

/// E2E p99 once sent (the server's queueing shows here) and, when streamed, TTFT p50
/// (a lighter, thinner line).
fn draw_latency<DB: DrawingBackend>(
    sweeps: &[Sweep],
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x_range: std::ops::Range<f64>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let metrics: [(&str, Percentile, bool); 2] = [
        ("E2E p99", |s| Some(s.latency(Metric::E2e)?.p99), false),
        ("TTFT p50", |s| Some(s.latency(Metric::Ttft)?.p50), true),
    ];
    let y_max = sweeps
        .iter()
        .flat_map(|g| g.points.iter())
        .flat_map(|s| metrics.iter().filter_map(|m| m.1(s)))
        .fold(1.0, f64::max)
        * 1.2;
    let axes = Axes {
        x: x_range,
        y: 0.0..y_max,
        x_desc: "in-flight limit (log scale)",
        x_label: limit_label,
        y_desc: "latency (ms) — down is better",
        y_label: axis_number,
    };
    let mut chart = linear_panel(area, "Latency by concurrency limit", axes)?;
    for g in sweeps {
        for (name, value, lighter) in metrics {
            let points: Vec<(f64, f64)> = g
                .points
                .iter()
                .filter_map(|s| Some((x(s), value(s)?)))
                .collect();
            if points.is_empty() {
                continue;
            }
            let style = color(g.index);
            let line = if lighter {
                style.mix(0.55).stroke_width(2)
            } else {
                style.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(points.clone(), line))?
                .label(format!("{name}: {}", g.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], line));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 5, line.filled())))?;
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
