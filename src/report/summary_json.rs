//! The `summary.json` exporter: writes the saved-results schema of [`crate::summary`]
//! built from a run, atomically. The schema itself, and reading it back, are not this
//! module's.

use super::exporter::Exporter;
use crate::result::RunResult;
use crate::summary::{FILE, Summary};
use std::path::Path;

/// Writes `summary.json`.
pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn write(&self, dir: &Path, run: &RunResult) -> std::io::Result<()> {
        let json =
            serde_json::to_vec_pretty(&Summary::from_run(run)).map_err(std::io::Error::other)?;
        super::atomic::write(&dir.join(FILE), &json)
    }
}
