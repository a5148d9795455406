//! [`Document`]: a report rendered from the saved files alone, so that
//! `llmbench report` redraws it identically (the files written from the measured run are
//! [`super::exporter`]'s). `report/mod.rs` lists the documents; adding one is its file
//! plus a line there.
//!
//! Only the type: nothing here knows a particular document or writes a file.

use super::charts::ChartFile;
use super::saved::SavedRun;
use super::verdict::Verdict;

/// A report rendered from a saved run, its verdict and its drawn charts.
pub struct Document {
    /// The file name inside the results folder.
    pub file_name: &'static str,
    pub render: fn(&SavedRun, &Verdict, &[ChartFile]) -> anyhow::Result<String>,
}
