//! Writing a run's results: one module per output format, each registered once below.
//! [`EXPORTERS`] write from the measured [`RunResult`]; [`DOCUMENTS`] (and the charts)
//! are rendered from the saved files alone.
//!
//! A run gets its own folder `<output>/<scenario>-<UTC timestamp>/`, created before the
//! first request with a `.running` marker in it (removed when the run ends, by any path
//! but a kill). After every strategy its rows are appended to `requests.csv` and the
//! whole files are rewritten, each atomically ([`atomic`]), so an interrupted, failing
//! or killed run still leaves everything measured so far on disk, and its summary says
//! whether it is complete.
//!
//! The saved schema is [`crate::summary`]'s, not this module's; nothing below `report`
//! imports this file (the formats import their siblings, never their parent).

pub mod atomic;
mod capacity;
pub mod charts;
mod definitions;
mod document;
mod escape;
mod exporter;
pub mod hdr;
pub mod hgrm;
pub mod html;
mod markdown;
pub mod requests_csv;
pub mod saved;
mod shards;
pub mod summary_json;
pub mod table;
mod verdict;

use crate::result::RunResult;
use crate::summary::{self, Incompleteness};
use anyhow::Context;
use document::Document;
use exporter::Exporter;
pub use requests_csv::RowWriter;

/// Every record of the results folder `dir`'s `requests.csv`, by strategy label and in
/// index order, all in memory at once (tests and small runs; the report streams them).
pub fn read_records(
    dir: &Path,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<crate::recorder::RequestRecord>>> {
    requests_csv::read(&dir.join(requests_csv::FILE))
}
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files rewritten whole from a run's results after every strategy, in this order
/// (after `requests.csv`'s rows are appended): the summary last, so that a strategy it
/// lists has its other files on disk. Adding a format: its file, and a line here.
const EXPORTERS: &[&dyn Exporter] = &[&hgrm::HgrmFiles, &hdr::HdrFiles, &summary_json::SummaryJson];

/// The reports rendered from a saved run, after its charts, in this order.
/// Adding one: its file, and a line here.
const DOCUMENTS: &[Document] = &[markdown::MARKDOWN, html::HTML];

/// A run's results folder, marked [`summary::RUNNING`] from its creation until
/// [`ResultsDir::end`] (or until it is dropped: an error or a panic ends the run too).
pub struct ResultsDir {
    path: PathBuf,
    ended: bool,
}

impl ResultsDir {
    /// Creates a new folder for the run, never reusing an existing one, marks it
    /// running, starts `requests.csv` and copies the scenario file into it.
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
        atomic::write(
            &path.join(summary::RUNNING),
            summary::running_marker().as_bytes(),
        )?;
        // From here on, dropping the value removes the marker.
        let dir = ResultsDir { path, ended: false };
        requests_csv::create(&dir.path)?;
        let scenario = std::fs::read(scenario_file).with_context(|| {
            format!("cannot read the scenario file {}", scenario_file.display())
        })?;
        atomic::write(&dir.path.join(saved::SCENARIO_COPY), &scenario)?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts streaming strategy `label`'s rows into `requests.csv` as its requests
    /// finish; [`RowWriter::finish`] waits until they are on disk.
    pub fn rows(&self, label: &str) -> anyhow::Result<Arc<RowWriter>> {
        RowWriter::start(&self.path, label).with_context(|| {
            format!(
                "cannot append to {}",
                self.path.join(requests_csv::FILE).display()
            )
        })
    }

    /// Saves the results so far (rows are already in `requests.csv`): rewrites every
    /// other output format.
    pub fn write(&mut self, run: &RunResult) -> anyhow::Result<()> {
        let dir = &self.path;
        for exporter in EXPORTERS {
            exporter
                .write(dir, run)
                .with_context(|| format!("cannot write results into {}", dir.display()))?;
        }
        Ok(())
    }

    /// Ends the run: removes the [`summary::RUNNING`] marker.
    pub fn end(&mut self) -> anyhow::Result<()> {
        self.ended = true;
        let marker = self.path.join(summary::RUNNING);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", marker.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for ResultsDir {
    fn drop(&mut self) {
        if !self.ended {
            let _ = std::fs::remove_file(self.path.join(summary::RUNNING));
        }
    }
}

/// What rendering the reports of a results folder found.
pub struct Rendered {
    pub charts: usize,
    /// Why the run is incomplete, if it is (the reports say so too).
    pub incomplete: Option<Incompleteness>,
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
        atomic::write(&path, text.as_bytes())?;
    }
    Ok(Rendered {
        charts: charts.len(),
        incomplete: run.incomplete,
        // A capacity search's probes miss the SLO by design; only its answer counts.
        slo_failed: match &run.summary.capacity {
            Some(answer) => answer.status == crate::search::SearchStatus::LowestFails,
            None => verdict.slo_failed(),
        },
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
