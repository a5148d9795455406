//! Latency by percentile, HdrHistogram style: x is the percentile on a 1/(1 − p) log
//! scale (0 %, 90 %, 99 %, 99.9 %, 99.99 %), so the tail gets as much room as the body.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{
    axis_number, caption, draw_legend, draw_lines, label_font, max_of, spectrum_lines,
};
use crate::metric::Metric;
use crate::report::saved::SavedRun;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The spectrum of one metric: one chart per instance.
pub struct Spectrum {
    metric: Metric,
    file_stem: &'static str,
    title: &'static str,
    /// The caption drawn inside the chart.
    caption: &'static str,
}

/// `latency-spectrum-e2e`.
pub const E2E: Spectrum = Spectrum {
    metric: Metric::E2e,
    file_stem: "latency-spectrum-e2e",
    title: "End-to-end latency by percentile",
    caption: "End-to-end latency (sent → last byte)",
};

/// `latency-spectrum-ttft`.
pub const TTFT: Spectrum = Spectrum {
    metric: Metric::Ttft,
    file_stem: "latency-spectrum-ttft",
    title: "Time to first token by percentile",
    caption: "Time to first token",
};

impl Chart for Spectrum {
    fn file_stem(&self) -> &'static str {
        self.file_stem
    }

    fn title(&self) -> &'static str {
        self.title
    }

    fn applies(&self, run: &SavedRun) -> bool {
        run.has_spectrum(self.metric)
    }

    fn size(&self, _: &SavedRun) -> (u32, u32) {
        (1000, 560)
    }

    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw(run, area, self.metric, self.caption)
    }
}

/// 1/(1 − p) at the right edge: 99.99 %.
const X_MAX: f64 = 10_000.0;

fn draw<DB: DrawingBackend>(
    run: &SavedRun,
    area: &DrawingArea<DB, plotters::coord::Shift>,
    metric: Metric,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let lines = spectrum_lines(run, metric, |p| {
        (p.quantile < 1.0).then(|| ((1.0 / (1.0 - p.quantile)).min(X_MAX), p.value_ms))
    });
    let y_max = max_of(&lines, |p| p.1, 1.0) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, caption(22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((1.0f64..X_MAX).log_scale(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&axis_number)
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .axis_desc_style(label_font())
        .label_style(label_font())
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()?;
    draw_lines(&mut chart, lines)?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// `x` = 1/(1 − p) as a percentile with as many decimals as its order of magnitude
/// needs: 1 → "0%", 10 → "90%", 1000 → "99.9%".
fn percentile_label(x: f64) -> String {
    let p = (1.0 - 1.0 / x) * 100.0;
    let digits = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{p:.digits$}%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = [1.0, 10.0, 100.0, 1000.0, 10_000.0]
            .into_iter()
            .map(super::percentile_label)
            .collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
