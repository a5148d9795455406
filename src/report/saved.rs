//! A results folder read back from disk: what charts and reports are drawn from.
//!
//! Reports are always rendered from the saved files, right after a run as well as by
//! `llmbench report`, so a redraw reproduces them exactly without re-running.

use super::summary_json::{self, StrategySummary, Summary};
use super::{SCENARIO_COPY, hgrm, requests_csv};
use crate::recorder::timeline::{TimelineBucket, timeline};
use crate::recorder::{Outcome, RequestRecord};
use crate::scenario::SloConfig;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SavedRun {
    pub dir: PathBuf,
    pub summary: Summary,
    pub slo: SloConfig,
    pub strategies: Vec<SavedStrategy>,
}

pub struct SavedStrategy {
    pub summary: StrategySummary,
    pub records: Vec<RequestRecord>,
    /// Percentile spectra by metric key (`e2e`, `ttft`, `itl`, …), from the .hgrm files.
    pub spectra: BTreeMap<String, Vec<hgrm::SpectrumPoint>>,
}

impl SavedStrategy {
    pub fn label(&self) -> &str {
        &self.summary.label
    }

    pub fn timeline(&self, width: Duration) -> Vec<TimelineBucket> {
        timeline(&self.records, width)
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
    pub fn load(dir: &Path) -> anyhow::Result<SavedRun> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read {}: is {} an llmbench results folder?",
                    path.display(),
                    dir.display()
                )
            })
        };
        let summary: Summary =
            serde_json::from_str(&read(summary_json::FILE)?).with_context(|| {
                format!(
                    "{}: not an llmbench summary",
                    dir.join(summary_json::FILE).display()
                )
            })?;
        let slo = toml::from_str::<SloOnly>(&read(SCENARIO_COPY)?)
            .with_context(|| format!("{}: invalid [slo]", dir.join(SCENARIO_COPY).display()))?
            .slo;
        let mut records = requests_csv::read(&dir.join(requests_csv::FILE))?;
        let strategies = summary
            .strategies
            .iter()
            .map(|s| {
                Ok(SavedStrategy {
                    records: records.remove(&s.label).unwrap_or_default(),
                    spectra: hgrm::read_all(dir, &s.label)?,
                    summary: s.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(SavedRun {
            dir: dir.to_path_buf(),
            summary,
            slo,
            strategies,
        })
    }
}

/// Parses a `requests.csv` outcome cell.
pub(super) fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "ok" => Some(Outcome::Ok),
        "cancelled" => Some(Outcome::Cancelled),
        "dropped" => Some(Outcome::Dropped),
        "over_budget" => Some(Outcome::OverBudget),
        other => crate::recorder::ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == other)
            .map(Outcome::Failed),
    }
}

/// Parses a microsecond cell; empty means "did not happen".
pub(super) fn parse_us(s: &str) -> Result<Option<Duration>, std::num::ParseIntError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>().map(|us| Some(Duration::from_micros(us)))
}
