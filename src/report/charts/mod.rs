//! Charts drawn with plotters from a saved run, each written as SVG (for the HTML
//! report) and PNG (for Markdown and documents). Each chart is a file implementing
//! [`Chart`]; [`CHARTS`] lists them in report order, so adding a chart is its file plus
//! one line there.
//!
//! Owns the registry and writing the files (atomically, through [`super::atomic`]); the charts themselves import only
//! [`chart`] and [`plotting`], never this file.

mod cdf;
mod chart;
mod margin;
mod plotting;
mod spectrum;
mod sweep;
mod timeline;
mod tradeoff;

use super::saved::SavedRun;
use anyhow::Context;
pub use chart::{AnyChart, Chart, DrawResult};
use plotters::prelude::*;
use std::path::PathBuf;

/// Folder of the charts inside a results folder.
pub const DIR: &str = "charts";

/// Every chart, in the order the reports show them.
pub const CHARTS: &[&dyn AnyChart] = &[
    &spectrum::E2E,
    &spectrum::TTFT,
    &cdf::LatencyCdf,
    &timeline::Timeline,
    &tradeoff::Tradeoff,
    &sweep::ConcurrencySweep,
    &margin::CapacityMargins,
];

/// A chart written to disk.
pub struct ChartFile {
    pub title: &'static str,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Draws every chart that applies to `run` into `<run>/charts/`.
pub fn render_all(run: &SavedRun) -> anyhow::Result<Vec<ChartFile>> {
    plotting::register_font();
    let dir = run.dir.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    CHARTS
        .iter()
        .filter(|chart| chart.applies(run))
        .map(|chart| {
            let stem = chart.file_stem();
            let file = ChartFile {
                title: chart.title(),
                svg: dir.join(format!("{stem}.svg")),
                png: dir.join(format!("{stem}.png")),
            };
            let failed = |e: Box<dyn std::error::Error>| anyhow::anyhow!("cannot draw {stem}: {e}");
            let size = chart.size(run);
            let mut svg = String::new();
            on_white(
                SVGBackend::with_string(&mut svg, size).into_drawing_area(),
                |area| chart.draw_svg(run, area),
            )
            .map_err(failed)?;
            super::atomic::write(&file.svg, svg.as_bytes())?;
            // The bitmap backend encodes into a file it opens itself: a temporary one.
            let mut drawn = Ok(());
            super::atomic::write_at(&file.png, |temp| {
                drawn = on_white(BitMapBackend::new(temp, size).into_drawing_area(), |area| {
                    chart.draw_png(run, area)
                });
                match &drawn {
                    Ok(()) => Ok(()),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                }
            })
            .or_else(|e| drawn.map_err(failed).and(Err(e.into())))?;
            Ok(file)
        })
        .collect()
}

/// Fills `root` white, draws on it and writes it out.
fn on_white<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    draw: impl FnOnce(&DrawingArea<DB, plotters::coord::Shift>) -> DrawResult,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    draw(&root)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CHARTS;

    #[test]
    fn charts_are_listed_once_in_report_order() {
        let stems: Vec<&str> = CHARTS.iter().map(|c| c.file_stem()).collect();
        assert_eq!(
            stems,
            [
                "latency-spectrum-e2e",
                "latency-spectrum-ttft",
                "latency-cdf",
                "timeline",
                "throughput-vs-p99",
                "concurrency-sweep",
                "capacity-margins",
            ]
        );
        let mut titles: Vec<&str> = CHARTS.iter().map(|c| c.title()).collect();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(titles.len(), CHARTS.len(), "every title is distinct");
    }
}
