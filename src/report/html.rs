//! `report.html`: one self-contained file (charts inline as SVG, styles inline, no
//! scripts, nothing fetched), to open in any browser or attach anywhere. Renders from
//! the saved run only; it shares nothing with the Markdown report but the verdict,
//! tables and definitions.

use super::charts::ChartFile;
use super::definitions::DEFINITIONS;
use super::document::Document;
use super::escape::html as escape;
use super::saved::SavedRun;
use super::table::ResultTable;
use super::verdict::Verdict;
use anyhow::Context;
use std::fmt::Write as _;

pub const FILE: &str = "report.html";

/// `report.html`, for the report's list of documents.
pub const HTML: Document = Document {
    file_name: FILE,
    render,
};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1500px;\
margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}\
.meta{color:#666}.incomplete{border-left:4px solid #d55e00;padding:.3rem .6rem;background:#fdf3ec}table{border-collapse:collapse;margin:1rem 0}\
th,td{border:1px solid #ccc;padding:.3rem .6rem}td{text-align:right;font-variant-numeric:tabular-nums}\
tbody th{text-align:left;font-weight:normal}thead th{background:#f3f3f3}\
figure{margin:1.5rem 0}figure svg{max-width:100%;height:auto}figcaption{color:#555}";

/// `**bold**` in a verdict sentence becomes `<strong>`; everything else is escaped.
fn inline(s: &str) -> String {
    escape(s)
        .split("**")
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<strong>{part}</strong>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn render(run: &SavedRun, verdict: &Verdict, charts: &[ChartFile]) -> anyhow::Result<String> {
    let s = &run.summary;
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>llmbench report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>llmbench report: {name}</h1>\n",
        name = escape(&s.scenario)
    );
    if !s.description.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(&s.description));
    }
    let _ = writeln!(
        html,
        "<p class=\"meta\">Run {} · llmbench {} · {} ({} cores), {}{}</p>",
        escape(&s.started_at),
        escape(&s.tool_version),
        escape(&s.machine.cpu_model),
        s.machine.cores,
        escape(&s.machine.os),
        if s.interrupted {
            " · <strong>interrupted</strong>"
        } else {
            ""
        }
    );
    if let Some(incomplete) = &run.incomplete {
        let _ = writeln!(
            html,
            "<p class=\"incomplete\"><strong>Incomplete run</strong>: {}. The figures below cover only the strategies that were saved.</p>",
            escape(&incomplete.to_string())
        );
    }
    if let Some(answer) = &s.capacity {
        html.push_str(&super::capacity::html(answer));
    }
    html.push_str("<h2>Verdict</h2>\n<ul>\n");
    for finding in &verdict.findings {
        let _ = writeln!(html, "<li>{}</li>", inline(finding));
    }
    let _ = writeln!(
        html,
        "</ul>\n<p><strong>Recommendation.</strong> {}</p>",
        inline(&verdict.recommendation)
    );
    html.push_str("<h2>Results</h2>\n");
    html.push_str(&ResultTable::new(&s.strategies).to_html());
    if let Some(merged) = &s.merged {
        let sentence = super::shards::sentence(merged, &s.strategies);
        let _ = writeln!(html, "<h2>Shards</h2>\n<p>{}</p>", escape(&sentence));
        html.push_str(&super::shards::table(merged).to_html());
    }
    if let Some(table) = verdict.slo_table() {
        html.push_str("<h2>Service-level objectives</h2>\n");
        html.push_str(&table.to_html());
    }
    html.push_str("<h2>Charts</h2>\n");
    for chart in charts {
        let svg = std::fs::read_to_string(&chart.svg)
            .with_context(|| format!("cannot read {}", chart.svg.display()))?;
        let svg = svg.trim_start_matches(|c| c != '<');
        let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| {
            rest.split_once("?>")
                .map_or(rest, |(_, after)| after.trim_start())
        });
        let _ = writeln!(
            html,
            "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
            escape(chart.title)
        );
    }
    let _ = writeln!(html, "<h2>Definitions</h2>\n{}", definitions_html());
    html.push_str("</body>\n</html>\n");
    Ok(html)
}

fn definitions_html() -> String {
    let items: String = DEFINITIONS
        .iter()
        .map(|(term, meaning)| {
            format!(
                "<li><strong>{}</strong>: {}</li>\n",
                escape(term),
                escape(meaning)
            )
        })
        .collect();
    format!("<ul>\n{items}</ul>")
}
