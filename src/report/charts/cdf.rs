//! Cumulative distributions of E2E, TTFT and ITL, one panel each, every strategy in
//! each panel: where the curves separate is where strategies differ.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{
    Axes, axis_number, draw_legend, draw_lines, linear_panel, max_of, spectrum_lines,
};
use crate::metric::Metric;
use crate::report::saved::SavedRun;
use plotters::coord::Shift;
use plotters::prelude::*;

const PANELS: [(Metric, &str); 3] = [
    (Metric::E2e, "E2E latency"),
    (Metric::Ttft, "Time to first token"),
    (Metric::Itl, "Inter-token latency"),
];

/// `latency-cdf`.
pub struct LatencyCdf;

impl Chart for LatencyCdf {
    fn file_stem(&self) -> &'static str {
        "latency-cdf"
    }

    fn title(&self) -> &'static str {
        "Latency distributions"
    }

    fn applies(&self, run: &SavedRun) -> bool {
        run.has_spectrum(Metric::E2e)
    }

    fn size(&self, _: &SavedRun) -> (u32, u32) {
        (1500, 480)
    }

    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw(run, area)
    }
}

fn draw<DB: DrawingBackend>(
    run: &SavedRun,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let panels = area.split_evenly((1, PANELS.len()));
    for ((metric, title), panel) in PANELS.iter().zip(panels.iter()) {
        let lines = spectrum_lines(run, *metric, |p| Some((p.value_ms, p.quantile)));
        if lines.is_empty() {
            continue;
        }
        let x_max = max_of(&lines, |p| p.0, 0.001) * 1.05;
        let axes = Axes {
            x: 0.0..x_max,
            y: 0.0..1.0,
            x_desc: "latency (ms)",
            y_desc: "share of samples ≤ x",
            x_label: axis_number,
            y_label: |y| format!("{:.0}%", y * 100.0),
        };
        let mut chart = linear_panel(panel, title, axes)?;
        draw_lines(&mut chart, lines)?;
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    Ok(())
}
