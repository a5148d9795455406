//! The capacity section of the reports, for a capacity search's results: the answer in
//! one plain sentence first, then its figures (boundary, binding objective, goodput,
//! replicas) and the probe table, in the run order. Text only, from the saved answer;
//! the margin chart is a chart of its own.

use super::escape::html as escape;
use super::table::ResultTable;
use crate::search::{CapacityAnswer, ProbeVerdict};

/// The figures under the sentence, as (name, value) pairs.
fn figures(a: &CapacityAnswer) -> Vec<(String, String)> {
    let point = |v: Option<f64>| v.map_or("none".into(), |v| format!("{v:.2} {}", a.unit));
    let mut rows = vec![
        ("highest passing".to_string(), point(a.highest_passing)),
        ("lowest failing".into(), point(a.lowest_failing)),
        (
            "binding objective".into(),
            a.binding_objective.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "goodput at the boundary".into(),
            a.goodput_rps
                .map_or("none".into(), |g| format!("{g:.2} req/s")),
        ),
        (
            "points / probes".into(),
            format!(
                "{} / {} (precision {:.0} %)",
                a.points,
                a.probes.len(),
                a.precision * 100.0
            ),
        ),
    ];
    if let Some(r) = &a.replicas {
        rows.push((
            "replicas".into(),
            format!(
                "{} for {} req/s, each at {:.0} % of its {:.2} req/s",
                r.count,
                r.target_rps,
                r.headroom * 100.0,
                r.per_replica_rps
            ),
        ));
    }
    rows
}

/// One row per probe: its point, verdict, each objective's reading, throughput and
/// goodput.
fn probe_table(a: &CapacityAnswer) -> ResultTable {
    let objectives: Vec<String> = a
        .probes
        .first()
        .map(|p| p.objectives.iter().map(|o| o.objective.clone()).collect())
        .unwrap_or_default();
    let mut header = vec![a.dimension.clone(), "verdict".into()];
    header.extend(objectives.iter().cloned());
    header.extend(["req/s".into(), "goodput req/s".into()]);
    let rows = a
        .probes
        .iter()
        .map(|p| (p.label.clone(), probe_cells(p, &objectives)))
        .collect();
    ResultTable { header, rows }
}

fn probe_cells(p: &ProbeVerdict, objectives: &[String]) -> Vec<String> {
    let mut cells = vec![format!("{:.2}", p.point), p.outcome().to_string()];
    for name in objectives {
        let reading = p.objectives.iter().find(|o| &o.objective == name);
        cells.push(reading.map_or("-".into(), |o| {
            let mark = if o.margin >= 0.0 { "✓" } else { "✗" };
            o.actual
                .map_or(format!("{mark} no data"), |v| format!("{mark} {v:.3}"))
        }));
    }
    cells.push(format!("{:.2}", p.throughput_rps));
    cells.push(format!("{:.2}", p.goodput_rps));
    cells
}

pub fn markdown(a: &CapacityAnswer) -> String {
    let mut md = format!("## Capacity\n\n**{}**\n\n", a.sentence());
    for (name, value) in figures(a) {
        md.push_str(&format!("- {name}: {value}\n"));
    }
    md.push_str("\n### Probes\n\n");
    md.push_str(&probe_table(a).to_markdown());
    md.push_str("\n\n");
    md
}

pub fn html(a: &CapacityAnswer) -> String {
    let mut html = format!(
        "<h2>Capacity</h2>\n<p><strong>{}</strong></p>\n<ul>\n",
        escape(&a.sentence())
    );
    for (name, value) in figures(a) {
        html.push_str(&format!("<li>{}: {}</li>\n", escape(&name), escape(&value)));
    }
    html.push_str("</ul>\n<h3>Probes</h3>\n");
    html.push_str(&probe_table(a).to_html());
    html
}
