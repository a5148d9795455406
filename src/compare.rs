//! Comparing two results folders: per-strategy deltas of throughput, latency and
//! failures, with regressions flagged, for CI gates and before/after questions.
//!
//! Reads only the saved [`crate::summary`] of each folder (and whether each run is
//! complete) and formats with the report's table; it writes nothing but its own
//! Markdown comparison, atomically. An incomplete side is named in a warning, and a
//! strategy whose figures on a side are partial is marked in the table's header.

use crate::metric::Metric;
use crate::report::atomic;
use crate::report::table::{ResultTable, format_ms};
use crate::summary::{Incompleteness, StrategySummary, Summary, incompleteness};
use std::path::{Path, PathBuf};

pub struct Comparison {
    pub table: ResultTable,
    /// One sentence per regression.
    pub regressions: Vec<String>,
    /// One sentence per incomplete side: "baseline results/x is incomplete: …".
    pub warnings: Vec<String>,
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
    let sides = [
        ("baseline", baseline, incompleteness(baseline, &old)),
        ("candidate", candidate, incompleteness(candidate, &new)),
    ];
    let warnings: Vec<String> = sides
        .iter()
        .filter_map(|(side, dir, incomplete)| {
            let incomplete = incomplete.as_ref()?;
            Some(format!(
                "{side} {} is incomplete: {incomplete}",
                dir.display()
            ))
        })
        .collect();
    // A strategy present on a side but missing from its run did not finish there.
    let partial = |incomplete: &Option<Incompleteness>, label: &str| {
        incomplete
            .as_ref()
            .is_some_and(|i| i.missing.iter().any(|m| m == label))
    };
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
    let header = pairs
        .iter()
        .map(|(_, n)| {
            let sides: Vec<&str> = sides
                .iter()
                .filter(|(_, _, incomplete)| partial(incomplete, &n.label))
                .map(|(side, _, _)| *side)
                .collect();
            match sides.as_slice() {
                [] => n.label.clone(),
                sides => format!("{} (partial in {})", n.label, sides.join(" and ")),
            }
        })
        .collect();
    let table = ResultTable { header, rows };
    let written = write_markdown(
        baseline,
        candidate,
        &table,
        &regressions,
        &warnings,
        threshold_pct,
    )?;
    Ok(Comparison {
        table,
        regressions,
        warnings,
        written,
    })
}

fn write_markdown(
    baseline: &Path,
    candidate: &Path,
    table: &ResultTable,
    regressions: &[String],
    warnings: &[String],
    threshold_pct: f64,
) -> anyhow::Result<PathBuf> {
    let stem = baseline
        .file_name()
        .map_or_else(|| "baseline".into(), |n| n.to_string_lossy().into_owned());
    let path = candidate.join(format!("compare-{stem}.md"));
    let mut md = format!(
        "# Comparison\n\nBaseline `{}`, candidate `{}`; regressions beyond {threshold_pct} % are flagged ⚠.\n\n",
        baseline.display(),
        candidate.display(),
    );
    for warning in warnings {
        md.push_str(&format!("> **Incomplete run**: {warning}.\n\n"));
    }
    md.push_str(&table.to_markdown());
    md.push_str("\n\n");
    if regressions.is_empty() {
        md.push_str("No regression.\n");
    } else {
        md.push_str("## Regressions\n\n");
        for r in regressions {
            md.push_str(&format!("- {r}\n"));
        }
    }
    atomic::write(&path, md.as_bytes())?;
    Ok(path)
}
