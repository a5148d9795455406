//! The side-by-side console table: one column per strategy.

use crate::result::{Metric, RunResult, StrategyResult};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use hdrhistogram::Histogram;

/// What one column shows, computed once per strategy.
struct Column {
    label: String,
    ok: u64,
    failed: u64,
    rate_limited: u64,
    cancelled: u64,
    dropped: u64,
    makespan_s: f64,
    scheduled_rate: Option<f64>,
    send_rate: Option<f64>,
    rps: f64,
    tokens_per_s: f64,
    histograms: Vec<(Metric, Histogram<u64>)>,
}

impl Column {
    fn new(s: &StrategyResult) -> Column {
        let counts = s.counts();
        Column {
            label: s.label.clone(),
            ok: counts.ok,
            failed: counts.failed,
            rate_limited: counts.rate_limited,
            cancelled: counts.cancelled,
            dropped: counts.dropped,
            scheduled_rate: s.scheduled_rate(),
            send_rate: s.achieved_send_rate(),
            makespan_s: s.makespan().as_secs_f64(),
            rps: s.requests_per_second(),
            tokens_per_s: s.output_tokens_per_second(),
            histograms: Metric::ALL.iter().map(|&m| (m, s.histogram(m))).collect(),
        }
    }

    /// A latency quantile in milliseconds, or "-" without samples.
    fn quantile(&self, metric: Metric, q: f64) -> String {
        let h = &self
            .histograms
            .iter()
            .find(|(m, _)| *m == metric)
            .expect("all metrics")
            .1;
        if h.is_empty() {
            return "-".into();
        }
        let us = if q >= 1.0 {
            h.max()
        } else {
            h.value_at_quantile(q)
        };
        format_ms(us as f64 / 1000.0)
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

fn format_ms(ms: f64) -> String {
    match ms {
        ms if ms >= 100.0 => format!("{ms:.0}"),
        ms if ms >= 1.0 => format!("{ms:.1}"),
        ms => format!("{ms:.3}"),
    }
}

/// Renders the comparison table of every strategy in the run.
pub fn render(run: &RunResult) -> String {
    let columns: Vec<Column> = run.strategies.iter().map(Column::new).collect();
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    let mut header = vec!["".to_string()];
    header.extend(columns.iter().map(|c| c.label.clone()));
    table.set_header(header);

    type Row = (&'static str, fn(&Column) -> String);
    let mut rows: Vec<Row> = vec![
        ("requests ok", |c| c.ok.to_string()),
        ("failed", |c| c.failed.to_string()),
        ("  of which 429", |c| c.rate_limited.to_string()),
    ];
    if columns.iter().any(|c| c.dropped > 0) {
        rows.push(("dropped (queue full)", |c| c.dropped.to_string()));
    }
    if columns.iter().any(|c| c.cancelled > 0) {
        rows.push(("cancelled", |c| c.cancelled.to_string()));
    }
    if columns.iter().any(|c| c.scheduled_rate.is_some()) {
        rows.push(("scheduled req/s", |c| rate(c.scheduled_rate)));
        rows.push(("sent req/s", |c| rate(c.send_rate)));
    }
    rows.extend_from_slice(&[
        ("makespan (s)", |c| format!("{:.2}", c.makespan_s)),
        ("req/s", |c| format!("{:.2}", c.rps)),
        ("output tok/s", |c| format!("{:.1}", c.tokens_per_s)),
        ("E2E p50 (ms)", |c| c.quantile(Metric::E2e, 0.50)),
        ("E2E p90 (ms)", |c| c.quantile(Metric::E2e, 0.90)),
        ("E2E p99 (ms)", |c| c.quantile(Metric::E2e, 0.99)),
        ("E2E max (ms)", |c| c.quantile(Metric::E2e, 1.0)),
        ("E2E p99 from intended (ms)", |c| {
            c.quantile(Metric::E2eCorrected, 0.99)
        }),
        ("dispatch delay p50 (ms)", |c| {
            c.quantile(Metric::DispatchDelay, 0.50)
        }),
        ("dispatch delay p99 (ms)", |c| {
            c.quantile(Metric::DispatchDelay, 0.99)
        }),
        ("TTFT p50 (ms)", |c| c.quantile(Metric::Ttft, 0.50)),
        ("TTFT p99 (ms)", |c| c.quantile(Metric::Ttft, 0.99)),
        ("ITL p50 (ms)", |c| c.quantile(Metric::Itl, 0.50)),
        ("ITL p99 (ms)", |c| c.quantile(Metric::Itl, 0.99)),
    ]);
    for (name, cell) in rows {
        let mut row = vec![name.to_string()];
        row.extend(columns.iter().map(cell));
        table.add_row(row);
    }
    for index in 1..=columns.len() {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}
