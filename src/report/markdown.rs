//! `report.md`: verdict, tables and the PNG charts, to paste into a document or a pull
//! request. Renders from the saved run only; it shares nothing with the HTML report but
//! the verdict, tables and definitions.

use super::charts::{ChartFile, DIR as CHARTS_DIR};
use super::definitions::DEFINITIONS;
use super::document::Document;
use super::saved::SavedRun;
use super::table::ResultTable;
use super::verdict::Verdict;
use std::fmt::Write as _;

pub const FILE: &str = "report.md";

/// `report.md`, for the report's list of documents.
pub const MARKDOWN: Document = Document {
    file_name: FILE,
    render: |run, verdict, charts| Ok(render(run, verdict, charts)),
};

fn render(run: &SavedRun, verdict: &Verdict, charts: &[ChartFile]) -> String {
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
    if let Some(incomplete) = &run.incomplete {
        let _ = writeln!(
            md,
            "> **Incomplete run**: {incomplete}. The figures below cover only the strategies that were saved.\n"
        );
    }
    if let Some(answer) = &s.capacity {
        md.push_str(&super::capacity::markdown(answer));
    }
    md.push_str("## Verdict\n\n");
    for finding in &verdict.findings {
        let _ = writeln!(md, "- {finding}");
    }
    let _ = writeln!(md, "\n**Recommendation.** {}\n", verdict.recommendation);
    md.push_str("## Results\n\n");
    md.push_str(&ResultTable::new(&s.strategies).to_markdown());
    md.push_str("\n\n");
    if let Some(merged) = &s.merged {
        let _ = writeln!(
            md,
            "## Shards\n\n{}\n",
            super::shards::sentence(merged, &s.strategies)
        );
        md.push_str(&super::shards::table(merged).to_markdown());
        md.push_str("\n\n");
    }
    if let Some(table) = verdict.slo_table() {
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
            chart.title, chart.title, CHARTS_DIR, name
        );
    }
    md.push_str("## Definitions\n\n");
    for (term, meaning) in DEFINITIONS {
        let _ = writeln!(md, "- **{term}**: {meaning}");
    }
    md
}
