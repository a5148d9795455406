//! Writing a run's results: one module per output format, each registered once below.
//! [`EXPORTERS`] write from the measured [`RunResult`]; [`DOCUMENTS`] (and the charts)
//! are rendered from the saved files alone.
//!
//! A run gets its own folder `<output>/<scenario>-<UTC timestamp>/`, created before the
//! first request, and the files are rewritten after every strategy, so an interrupted
//! or failing run still leaves everything measured so far on disk.
//!
//! The saved schema is [`crate::summary`]'s, not this module's; nothing below `report`
//! imports this file (the formats import their siblings, never their parent).

pub mod charts;
mod definitions;
mod document;
mod escape;
mod exporter;
mod hgrm;
pub mod html;
mod markdown;
mod requests_csv;
pub mod saved;
pub mod summary_json;
pub mod table;
mod verdict;

use crate::result::RunResult;
use anyhow::Context;
use document::Document;
use exporter::Exporter;
use std::path::{Path, PathBuf};

/// The files written from a run's results after every strategy, in this order.
/// Adding a format: its file, and a line here.
const EXPORTERS: &[&dyn Exporter] = &[
    &summary_json::SummaryJson,
    &requests_csv::RequestsCsv,
    &hgrm::HgrmFiles,
];

/// The reports rendered from a saved run, after its charts, in this order.
/// Adding one: its file, and a line here.
const DOCUMENTS: &[Document] = &[markdown::MARKDOWN, html::HTML];

/// A run's results folder.
pub struct ResultsDir {
    path: PathBuf,
}

impl ResultsDir {
    /// Creates a new folder for the run, never reusing an existing one, and copies the
    /// scenario file into it.
    pub fn create(
        base: &Path,
        scenario_name: &str,
        started_at: &str,
        scenario_file: &Path,
    ) -> anyhow::Result<ResultsDir> {
        std::fs::create_dir_all(base)
            .with_context(|| format!("cannot create the output folder {}", base.display()))?;
        let stamp: String = started_at
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let path = create_unique_dir(base, &format!("{scenario_name}-{stamp}"))?;
        std::fs::copy(scenario_file, path.join(saved::SCENARIO_COPY))
            .with_context(|| format!("cannot copy the scenario into {}", path.display()))?;
        Ok(ResultsDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every output format for the results so far.
    pub fn write(&self, run: &RunResult) -> anyhow::Result<()> {
        let dir = &self.path;
        for exporter in EXPORTERS {
            exporter
                .write(dir, run)
                .with_context(|| format!("cannot write results into {}", dir.display()))?;
        }
        Ok(())
    }
}

/// What rendering the reports of a results folder found.
pub struct Rendered {
    pub charts: usize,
    pub slo_failed: bool,
    pub recommendation: String,
}

/// Draws the charts and writes `report.md` and `report.html` for a results folder, all
/// from its saved files.
pub fn render_reports(dir: &Path) -> anyhow::Result<Rendered> {
    let run = saved::SavedRun::load(dir)?;
    let charts = charts::render_all(&run)?;
    let verdict = verdict::verdict(&run);
    for document in DOCUMENTS {
        let path = dir.join(document.file_name);
        let text = (document.render)(&run, &verdict, &charts)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Rendered {
        charts: charts.len(),
        slo_failed: verdict.slo_failed(),
        recommendation: verdict.recommendation,
    })
}

/// Creates `base/stem`, or `base/stem-2`, `-3`, … if taken: a run never overwrites another.
fn create_unique_dir(base: &Path, stem: &str) -> anyhow::Result<PathBuf> {
    for n in 1u32.. {
        let path = match n {
            1 => base.join(stem),
            n => base.join(format!("{stem}-{n}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()));
            }
        }
    }
    anyhow::bail!("no free folder name for {stem} in {}", base.display())
}
