//! A results folder read back from disk: what charts and reports are drawn from.
//!
//! Reports are always rendered from the saved files, right after a run as well as by
//! `llmbench report`, so a redraw reproduces them exactly without re-running.
//!
//! Owns loading a folder as a whole; each file's own reader stays with its format
//! (`hgrm`, `requests_csv`) and the summary's with its schema ([`crate::summary`]).
//! It writes nothing.

use super::{hgrm, requests_csv};
use crate::metric::Metric;
use crate::recorder::timeline::{Ticks, TimelineBucket, fill_limit};
use crate::scenario::SloConfig;
use crate::summary::{self, Incompleteness, StrategySummary, Summary};
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the scenario copy inside a results folder.
pub const SCENARIO_COPY: &str = "scenario.toml";

pub struct SavedRun {
    pub dir: PathBuf,
    pub summary: Summary,
    /// Why the run is incomplete, if it is: still running, killed, interrupted.
    pub incomplete: Option<Incompleteness>,
    pub slo: SloConfig,
    pub strategies: Vec<SavedStrategy>,
}

pub struct SavedStrategy {
    pub summary: StrategySummary,
    /// Its timeline, rebuilt from its rows of `requests.csv`.
    pub ticks: Ticks,
    /// Percentile spectra by metric, from the .hgrm files (only metrics with samples).
    pub spectra: BTreeMap<Metric, Vec<hgrm::SpectrumPoint>>,
}

impl SavedStrategy {
    pub fn label(&self) -> &str {
        &self.summary.label
    }

    /// The timeline in buckets of `width`, with the limit in effect in each when the
    /// strategy kept one.
    pub fn timeline(&self, width: Duration) -> Vec<TimelineBucket> {
        let mut rows = self.ticks.buckets(width);
        if let Some(series) = &self.summary.limit_series {
            fill_limit(&mut rows, series, width);
        }
        rows
    }
}

/// Only the `[slo]` table of the saved scenario: the rest (a trace path, say) may not
/// resolve from the results folder and is not needed.
#[derive(Deserialize)]
struct SloOnly {
    #[serde(default)]
    slo: SloConfig,
}

impl SavedRun {
    /// Whether any strategy has samples of `metric` (no TTFT without streaming).
    pub fn has_spectrum(&self, metric: Metric) -> bool {
        self.strategies
            .iter()
            .any(|s| s.spectra.contains_key(&metric))
    }

    pub fn load(dir: &Path) -> anyhow::Result<SavedRun> {
        let summary = Summary::load(dir)?;
        let slo = toml::from_str::<SloOnly>(&summary::read_results_file(dir, SCENARIO_COPY)?)
            .with_context(|| format!("{}: invalid [slo]", dir.join(SCENARIO_COPY).display()))?
            .slo;
        // The rows are streamed: a run of any length is read in bounded memory.
        let mut ticks: BTreeMap<String, Ticks> = BTreeMap::new();
        requests_csv::read_each(&dir.join(requests_csv::FILE), |label, record| {
            if let Some(ticks) = ticks.get_mut(label) {
                ticks.replay(&record);
            } else {
                let mut new = Ticks::default();
                new.replay(&record);
                ticks.insert(label.to_string(), new);
            }
        })?;
        let strategies = summary
            .strategies
            .iter()
            .map(|s| {
                let mut ticks = ticks.remove(&s.label).unwrap_or_default();
                ticks.settle();
                Ok(SavedStrategy {
                    ticks,
                    spectra: hgrm::read_all(dir, &s.label)?,
                    summary: s.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(SavedRun {
            dir: dir.to_path_buf(),
            incomplete: summary::incompleteness(dir, &summary),
            summary,
            slo,
            strategies,
        })
    }
}
