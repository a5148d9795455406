//! `report.md`: verdict, tables and the PNG charts, to paste into a document or a pull
//! request.

use super::charts::ChartFile;
use super::saved::SavedRun;
use super::table::ResultTable;
use super::verdict::Verdict;
use std::fmt::Write as _;

pub const FILE: &str = "report.md";

pub fn render(run: &SavedRun, verdict: &Verdict, charts: &[ChartFile]) -> String {
    let s = &run.summary;
    let mut md = format!("# llmbench report: {}\n\n", s.scenario);
    if !s.description.is_empty() {
        let _ = writeln!(md, "{}\n", s.description);
    }
    let _ = writeln!(
        md,
        "Run {} · llmbench {} · {} ({} cores), {}{}\n",
        s.started_at,
        s.tool_version,
        s.machine.cpu_model,
        s.machine.cores,
        s.machine.os,
        if s.interrupted {
            " · **interrupted**"
        } else {
            ""
        }
    );
    md.push_str("## Verdict\n\n");
    for finding in &verdict.findings {
        let _ = writeln!(md, "- {finding}");
    }
    let _ = writeln!(md, "\n**Recommendation.** {}\n", verdict.recommendation);
    md.push_str("## Results\n\n");
    md.push_str(&ResultTable::new(&s.strategies).to_markdown());
    md.push_str("\n\n");
    if let Some(table) = slo_table(verdict) {
        md.push_str("## Service-level objectives\n\n");
        md.push_str(&table.to_markdown());
        md.push_str("\n\n");
    }
    md.push_str("## Charts\n\n");
    for chart in charts {
        let name = chart
            .png
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "### {}\n\n![{}]({}/{})\n",
            chart.kind.title(),
            chart.kind.title(),
            super::charts::DIR,
            name
        );
    }
    md.push_str("## Definitions\n\n");
    for (term, meaning) in super::DEFINITIONS {
        let _ = writeln!(md, "- **{term}**: {meaning}");
    }
    md
}

/// Objectives as rows, strategies as columns: "✓ 812" or "✗ 1204".
pub fn slo_table(verdict: &Verdict) -> Option<ResultTable> {
    let (_, first) = verdict.slo.first()?;
    let rows = first
        .iter()
        .enumerate()
        .map(|(row, check)| {
            let cells = verdict
                .slo
                .iter()
                .map(|(_, checks)| {
                    let c = &checks[row];
                    let actual = c.actual.map_or_else(
                        || "no data".into(),
                        |a| {
                            format!("{a:.3}")
                                .trim_end_matches('0')
                                .trim_end_matches('.')
                                .to_string()
                        },
                    );
                    format!("{} {actual}", if c.passed { "✓" } else { "✗" })
                })
                .collect();
            (check.objective.clone(), cells)
        })
        .collect();
    Some(ResultTable {
        header: verdict.slo.iter().map(|(label, _)| label.clone()).collect(),
        rows,
    })
}
