//! Comparing two results folders: per-strategy deltas of throughput, latency and
//! failures, with regressions flagged, for CI gates and before/after questions.
//!
//! Reads only the saved [`crate::summary`] of each folder and formats with the report's
//! table; it writes nothing but its own Markdown comparison.

use crate::metric::Metric;
use crate::report::table::{ResultTable, format_ms};
use crate::summary::{StrategySummary, Summary};
use anyhow::Context;
use std::path::{Path, PathBuf};

pub struct Comparison {
    pub table: ResultTable,
    /// One sentence per regression.
    pub regressions: Vec<String>,
    /// The Markdown comparison written into the candidate's folder.
    pub written: PathBuf,
}

/// Which way is better for a compared quantity.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// Reads one compared figure of a strategy; `None` when it has no samples of it.
type Figure = fn(&StrategySummary) -> Option<f64>;

const COMPARED: [(&str, Better, Figure); 6] = [
    ("req/s", Better::Higher, |s| Some(s.requests_per_s)),
    ("output tok/s", Better::Higher, |s| {
        Some(s.output_tokens_per_s)
    }),
    ("E2E p50 (ms)", Better::Lower, |s| {
        s.latency(Metric::E2e).map(|p| p.p50)
    }),
    ("E2E p99 (ms)", Better::Lower, |s| {
        s.latency(Metric::E2e).map(|p| p.p99)
    }),
    ("E2E p99 from intended (ms)", Better::Lower, |s| {
        s.latency(Metric::E2eCorrected).map(|p| p.p99)
    }),
    ("TTFT p99 (ms)", Better::Lower, |s| {
        s.latency(Metric::Ttft).map(|p| p.p99)
    }),
];

/// Compares `candidate` against `baseline`: a change for the worse of more than
/// `threshold_pct` percent in throughput or latency, or any increase in failed
/// requests, is a regression.
pub fn compare(
    baseline: &Path,
    candidate: &Path,
    threshold_pct: f64,
) -> anyhow::Result<Comparison> {
    anyhow::ensure!(
        threshold_pct.is_finite() && threshold_pct >= 0.0,
        "--threshold must be a percentage ≥ 0, got {threshold_pct}"
    );
    let (old, new) = (Summary::load(baseline)?, Summary::load(candidate)?);
    let pairs: Vec<(&StrategySummary, &StrategySummary)> = new
        .strategies
        .iter()
        .filter_map(|n| Some((old.strategies.iter().find(|o| o.label == n.label)?, n)))
        .collect();
    anyhow::ensure!(
        !pairs.is_empty(),
        "no strategy label appears in both {} and {}: nothing to compare",
        baseline.display(),
        candidate.display()
    );
    let mut regressions = Vec::new();
    let mut rows: Vec<(String, Vec<String>)> = COMPARED
        .iter()
        .map(|&(name, better, pick)| {
            let cells = pairs
                .iter()
                .map(|(o, n)| {
                    let (Some(a), Some(b)) = (pick(o), pick(n)) else {
                        return "-".to_string();
                    };
                    let change = if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
                    let worse = match better {
                        Better::Higher => -change,
                        Better::Lower => change,
                    };
                    let flag = if worse > threshold_pct {
                        regressions.push(format!(
                            "{}: {name} {} → {} ({change:+.1} %)",
                            n.label,
                            format_ms(a),
                            format_ms(b)
                        ));
                        " ⚠"
                    } else {
                        ""
                    };
                    format!("{} → {} ({change:+.1} %){flag}", format_ms(a), format_ms(b))
                })
                .collect();
            (name.to_string(), cells)
        })
        .collect();
    let failures = pairs
        .iter()
        .map(|(o, n)| {
            let (a, b) = (o.requests.failed, n.requests.failed);
            let flag = if b > a {
                regressions.push(format!("{}: failed requests {a} → {b}", n.label));
                " ⚠"
            } else {
                ""
            };
            format!("{a} → {b}{flag}")
        })
        .collect();
    rows.push(("failed requests".into(), failures));
    let table = ResultTable {
        header: pairs.iter().map(|(_, n)| n.label.clone()).collect(),
        rows,
    };
    let written = write_markdown(baseline, candidate, &table, &regressions, threshold_pct)?;
    Ok(Comparison {
        table,
        regressions,
        written,
    })
}

fn write_markdown(
    baseline: &Path,
    candidate: &Path,
    table: &ResultTable,
    regressions: &[String],
    threshold_pct: f64,
) -> anyhow::Result<PathBuf> {
    let stem = baseline
        .file_name()
        .map_or_else(|| "baseline".into(), |n| n.to_string_lossy().into_owned());
    let path = candidate.join(format!("compare-{stem}.md"));
    let mut md = format!(
        "# Comparison\n\nBaseline `{}`, candidate `{}`; regressions beyond {threshold_pct} % are flagged ⚠.\n\n{}\n\n",
        baseline.display(),
        candidate.display(),
        table.to_markdown()
    );
    if regressions.is_empty() {
        md.push_str("No regression.\n");
    } else {
        md.push_str("## Regressions\n\n");
        for r in regressions {
            md.push_str(&format!("- {r}\n"));
        }
    }
    std::fs::write(&path, md).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
