//! The [`Exporter`] trait: a format written whole from the measured [`RunResult`] after
//! every strategy (`requests.csv`, appended to instead, is not one) (the reports drawn from the saved files are [`super::document`]'s).
//! `report/mod.rs` lists the exporters; adding one is its file plus a line there.
//!
//! Only the trait: nothing here knows a particular format or reads a saved file.

use crate::result::RunResult;
use std::path::Path;

/// A file (or set of files) written from a run's measured results.
pub trait Exporter: Sync {
    /// Writes the format's file(s) into the results folder `dir`, replacing earlier ones
    /// atomically (through [`super::atomic`]).
    fn write(&self, dir: &Path, run: &RunResult) -> std::io::Result<()>;
}
