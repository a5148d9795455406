//! The [`Document`] trait: a report rendered from the saved files alone, so that
//! `llmbench report` redraws it identically (the files written from the measured run are
//! [`super::exporter`]'s). `report/mod.rs` lists the documents; adding one is its file
//! plus a line there.
//!
//! Only the trait: nothing here knows a particular document or writes a file.

use super::charts::ChartFile;
use super::saved::SavedRun;
use super::verdict::Verdict;

/// A report rendered from a saved run, its verdict and its drawn charts.
pub trait Document: Sync {
    /// The file name inside the results folder.
    fn file_name(&self) -> &'static str;

    fn render(
        &self,
        run: &SavedRun,
        verdict: &Verdict,
        charts: &[ChartFile],
    ) -> anyhow::Result<String>;
}
