//! The side-by-side comparison table, one column per strategy, built from the summary
//! and rendered for the console, Markdown or HTML. It formats; it reads no file and
//! judges nothing (that is the verdict's).

use super::escape;
use crate::metric::Metric;
use crate::summary::{ClientHealth, Percentiles, StrategySummary};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

pub struct ResultTable {
    pub header: Vec<String>,
    /// Row name, then one cell per strategy.
    pub rows: Vec<(String, Vec<String>)>,
}

type Cell = fn(&StrategySummary) -> String;

impl ResultTable {
    pub fn new(strategies: &[StrategySummary]) -> ResultTable {
        let any = |pred: fn(&StrategySummary) -> bool| strategies.iter().any(pred);
        let mut rows: Vec<(&str, Cell)> = Vec::new();
        let differ = |field: fn(&StrategySummary) -> &str| {
            strategies.iter().any(|s| field(s) != field(&strategies[0]))
        };
        if differ(|s| &s.runtime) {
            rows.push(("runtime", |s| s.runtime.clone()));
        }
        if differ(|s| &s.client) {
            rows.push(("HTTP client", |s| s.client.clone()));
        }
        // Shown when it tells something: a difference, or anything but plain HTTP/1.1.
        if differ(|s| &s.http_version)
            || any(|s| !matches!(s.http_version.as_str(), "" | "HTTP/1.1"))
        {
            rows.push(("HTTP version", |s| s.http_version.clone()));
        }
        if differ(|s| &s.runtime) || differ(|s| &s.client) {
            rows.push(("connections opened", |s| {
                s.mock
                    .map_or_else(|| "-".into(), |m| m.connections.to_string())
            }));
        }
        if any(|s| !s.copies.is_empty()) {
            rows.push(("ok by copy", |s| {
                let shares: Vec<String> = s.copies.iter().map(|c| c.ok.to_string()).collect();
                if shares.is_empty() {
                    "-".into()
                } else {
                    shares.join(" / ")
                }
            }));
        }
        rows.extend_from_slice(&[
            ("requests ok", |s| s.requests.ok.to_string()),
            ("failed", |s| s.requests.failed.to_string()),
            ("  of which 429", |s| s.requests.rate_limited.to_string()),
        ]);
        if any(|s| s.requests.dropped > 0) {
            rows.push(("dropped (queue full)", |s| s.requests.dropped.to_string()));
        }
        if any(|s| s.requests.over_budget > 0) {
            rows.push(("not sent (budget)", |s| s.requests.over_budget.to_string()));
        }
        if any(|s| s.requests.cancelled > 0) {
            rows.push(("cancelled", |s| s.requests.cancelled.to_string()));
        }
        if any(|s| s.scheduled_rate_per_s.is_some()) {
            rows.push(("scheduled req/s", |s| rate(s.scheduled_rate_per_s)));
            rows.push(("sent req/s", |s| rate(s.achieved_send_rate_per_s)));
        }
        if any(|s| s.prompt_cache.is_some()) {
            rows.push(("prompt cache hit rate", |s| {
                s.prompt_cache.map_or_else(
                    || "0 %".into(),
                    |c| {
                        format!(
                            "{:.0} % ({:.0} % of prompt tokens)",
                            c.hit_rate * 100.0,
                            c.cached_share * 100.0
                        )
                    },
                )
            }));
        }
        rows.extend_from_slice(&[
            ("makespan (s)", |s| format!("{:.2}", s.makespan_s)),
            ("req/s", |s| format!("{:.2}", s.requests_per_s)),
            ("output tok/s", |s| format!("{:.1}", s.output_tokens_per_s)),
            ("client CPU per request (ms)", |s| {
                s.client_cpu_per_request_ms()
                    .map_or_else(|| "-".into(), |ms| format!("{ms:.3}"))
            }),
        ]);
        if any(|s| s.client_health.is_some()) {
            rows.push(("runtime lag p99 (ms)", |s| {
                health(s, |h| h.lag_ms.as_ref().map(|lag| format_ms(lag.p99)))
            }));
            rows.push(("client CPU utilisation", |s| {
                health(s, |h| {
                    h.cpu_utilisation.map(|u| format!("{:.0} %", u * 100.0))
                })
            }));
        }
        rows.extend_from_slice(&[
            ("E2E p50 (ms)", |s| ms(s, Metric::E2e, |p| p.p50)),
            ("E2E p90 (ms)", |s| ms(s, Metric::E2e, |p| p.p90)),
            ("E2E p99 (ms)", |s| ms(s, Metric::E2e, |p| p.p99)),
            ("E2E max (ms)", |s| ms(s, Metric::E2e, |p| p.max)),
            ("E2E p99 from intended (ms)", |s| {
                ms(s, Metric::E2eCorrected, |p| p.p99)
            }),
            ("dispatch delay p50 (ms)", |s| {
                ms(s, Metric::DispatchDelay, |p| p.p50)
            }),
            ("dispatch delay p99 (ms)", |s| {
                ms(s, Metric::DispatchDelay, |p| p.p99)
            }),
            ("TTFT p50 (ms)", |s| ms(s, Metric::Ttft, |p| p.p50)),
            ("TTFT p99 (ms)", |s| ms(s, Metric::Ttft, |p| p.p99)),
            ("ITL p50 (ms)", |s| ms(s, Metric::Itl, |p| p.p50)),
            ("ITL p99 (ms)", |s| ms(s, Metric::Itl, |p| p.p99)),
        ]);
        if any(|s| s.mock.is_some_and(|m| m.token_lateness_us[2] > 0)) {
            rows.push(("mock pacing late p99 (ms)", |s| {
                s.mock.map_or_else(
                    || "-".into(),
                    |m| format_ms(m.token_lateness_us[1] as f64 / 1000.0),
                )
            }));
        }
        ResultTable {
            header: strategies.iter().map(|s| s.label.clone()).collect(),
            rows: rows
                .into_iter()
                .map(|(name, cell)| (name.to_string(), strategies.iter().map(cell).collect()))
                .collect(),
        }
    }

    fn comfy(&self, preset: &str) -> String {
        let mut table = Table::new();
        table
            .load_preset(preset)
            .set_content_arrangement(ContentArrangement::Disabled);
        let mut header = vec![String::new()];
        header.extend(self.header.iter().cloned());
        table.set_header(header);
        for (name, cells) in &self.rows {
            let mut row = vec![name.clone()];
            row.extend(cells.iter().cloned());
            table.add_row(row);
        }
        for index in 1..=self.header.len() {
            if let Some(column) = table.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        table.to_string()
    }

    pub fn to_console(&self) -> String {
        self.comfy(presets::UTF8_FULL_CONDENSED)
    }

    pub fn to_markdown(&self) -> String {
        self.comfy(presets::ASCII_MARKDOWN)
    }

    pub fn to_html(&self) -> String {
        let mut html = String::from("<table>\n<thead><tr><th></th>");
        for h in &self.header {
            html.push_str(&format!("<th>{}</th>", escape::html(h)));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for (name, cells) in &self.rows {
            html.push_str(&format!("<tr><th>{}</th>", escape::html(name.trim())));
            for c in cells {
                html.push_str(&format!("<td>{}</td>", escape::html(c)));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody>\n</table>\n");
        html
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

/// A percentile of a metric, or "-" when the strategy has no samples of it.
fn ms(s: &StrategySummary, metric: Metric, pick: fn(&Percentiles) -> f64) -> String {
    s.latency(metric)
        .map_or_else(|| "-".into(), |p| format_ms(pick(p)))
}

/// A figure of the client's health, or "-" when it was not measured.
fn health(s: &StrategySummary, pick: fn(&ClientHealth) -> Option<String>) -> String {
    s.client_health
        .as_ref()
        .and_then(pick)
        .unwrap_or_else(|| "-".into())
}

pub fn format_ms(ms: f64) -> String {
    match ms {
        ms if ms >= 100.0 => format!("{ms:.0}"),
        ms if ms >= 1.0 => format!("{ms:.1}"),
        ms => format!("{ms:.3}"),
    }
}
