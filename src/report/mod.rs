//! Writing a run's results: one module per output format, each reading [`RunResult`].
//!
//! A run gets its own folder `<output>/<scenario>-<UTC timestamp>/`, created before the
//! first request, and the files are rewritten after every strategy, so an interrupted
//! or failing run still leaves everything measured so far on disk.

pub mod charts;
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
use std::path::{Path, PathBuf};

pub use summary_json::Summary;

/// The metric definitions every report ends with (the README has the full version).
pub const DEFINITIONS: [(&str, &str); 7] = [
    (
        "E2E",
        "first attempt sent → last byte of the response, over successful requests",
    ),
    (
        "E2E from intended",
        "the item's intended start (its arrival) → last byte: includes the wait in the client's queue",
    ),
    (
        "TTFT",
        "the successful attempt sent → first non-empty content chunk",
    ),
    (
        "ITL",
        "every gap between consecutive non-empty content chunks, pooled",
    ),
    ("dispatch delay", "intended start → first attempt sent"),
    (
        "req/s, tok/s",
        "successful requests, and their output tokens, per second of makespan",
    ),
    ("makespan", "strategy start → end of its last response"),
];

/// File name of the scenario copy inside a results folder.
pub const SCENARIO_COPY: &str = "scenario.toml";

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
        std::fs::copy(scenario_file, path.join(SCENARIO_COPY))
            .with_context(|| format!("cannot copy the scenario into {}", path.display()))?;
        Ok(ResultsDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every output format for the results so far.
    pub fn write(&self, run: &RunResult) -> anyhow::Result<()> {
        let dir = &self.path;
        let context = || format!("cannot write results into {}", dir.display());
        summary_json::write(dir, run).with_context(context)?;
        requests_csv::write(dir, run).with_context(context)?;
        hgrm::write(dir, run).with_context(context)?;
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
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))
    };
    write(markdown::FILE, markdown::render(&run, &verdict, &charts))?;
    write(html::FILE, html::render(&run, &verdict, &charts)?)?;
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
