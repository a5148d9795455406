//! The [`Chart`] trait: a chart is drawn from a saved run alone, the same on every
//! backend, one chart per file. [`AnyChart`] is what the registry in `charts/mod.rs`
//! holds. Knows no particular chart and writes no file.

use crate::report::saved::SavedRun;
use plotters::coord::Shift;
use plotters::prelude::*;

pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One chart of a report, drawn from the saved files so that a redraw is identical.
/// Adding a chart: a file implementing this, and a line in the registry.
pub trait Chart: Sync {
    /// The file name, without extension, inside the charts folder.
    fn file_stem(&self) -> &'static str;

    /// The caption the reports show it under.
    fn title(&self) -> &'static str;

    /// Whether the run has the data this chart shows (no TTFT without streaming).
    fn applies(&self, run: &SavedRun) -> bool;

    /// Width and height in pixels.
    fn size(&self, run: &SavedRun) -> (u32, u32);

    /// Draws the chart on `area`, already filled white.
    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
        Self: Sized;
}

/// A [`Chart`] with its backend chosen at run time: a trait object cannot carry
/// [`Chart::draw`]'s backend parameter, so this names the two backends the reports use.
/// Every chart is one; implement [`Chart`], never this.
pub trait AnyChart: Chart {
    fn draw_svg(&self, run: &SavedRun, area: &DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult;
    fn draw_png(&self, run: &SavedRun, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult;
}

impl<C: Chart> AnyChart for C {
    fn draw_svg(&self, run: &SavedRun, area: &DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult {
        self.draw(run, area)
    }

    fn draw_png(&self, run: &SavedRun, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult {
        self.draw(run, area)
    }
}
