//! The "Shards" section of a merged run's reports: what each part of a sharded run sent
//! and how it started, so that a quota shared by the parts can be read part by part
//! (the rate each sent, the 429s each drew) beside the merged figures.
//!
//! Formats [`MergeRecord`] from the summary; reads no file and judges nothing.

use super::table::ResultTable;
use crate::shard::MergeRecord;
use crate::summary::StrategySummary;

/// The sentence above the table: how many parts, how far apart they started, and the
/// rate all of them sent together.
pub fn sentence(merged: &MergeRecord, strategies: &[StrategySummary]) -> String {
    let rates: Vec<String> = strategies
        .iter()
        .map(|s| {
            let rate = s
                .achieved_send_rate_per_s
                .map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
            format!(
                "{}: {rate} req/s sent in all, {} 429s",
                s.label, s.requests.rate_limited
            )
        })
        .collect();
    let mut text = format!(
        "Merged from {} of {} shards, started {:.1} ms apart (at most {} ms accepted). {}.",
        merged.parts.len(),
        merged.count,
        merged.start_skew_ms,
        merged.max_skew_ms,
        rates.join("; ")
    );
    if !merged.missing.is_empty() {
        text.push(' ');
        text.push_str(&merged.missing_reason());
        text.push('.');
    }
    text
}

/// One column per part: its machine, how late it started, its clock, and per strategy
/// the requests it sent, at what rate, and the 429s it drew.
pub fn table(merged: &MergeRecord) -> ResultTable {
    let header = merged
        .parts
        .iter()
        .map(|p| format!("shard {}", p.index))
        .collect();
    let row = |name: &str, cell: &dyn Fn(&crate::shard::ShardPart) -> String| {
        (name.to_string(), merged.parts.iter().map(cell).collect())
    };
    let mut rows = vec![
        row("machine", &|p| p.machine.clone()),
        row("start lateness (ms)", &|p| {
            format!("{:.2}", p.start.lateness_ms)
        }),
        row(
            "clock synchronised",
            &|p| match p.start.clock.synchronized {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "-".into(),
            },
        ),
        row("clock max error (ms)", &|p| {
            p.start
                .clock
                .max_error_ms
                .map_or_else(|| "-".into(), |e| format!("{e:.1}"))
        }),
    ];
    let labels: Vec<String> = merged
        .parts
        .first()
        .map(|p| p.strategies.iter().map(|s| s.label.clone()).collect())
        .unwrap_or_default();
    for (i, label) in labels.iter().enumerate() {
        let prefix = if labels.len() > 1 {
            format!("{label}: ")
        } else {
            String::new()
        };
        let sent = |p: &crate::shard::ShardPart| p.strategies.get(i).cloned();
        rows.push(row(&format!("{prefix}requests"), &|p| {
            sent(p).map_or_else(|| "-".into(), |s| s.requests.to_string())
        }));
        rows.push(row(&format!("{prefix}sent req/s"), &|p| {
            sent(p)
                .and_then(|s| s.send_rate_per_s)
                .map_or_else(|| "-".into(), |r| format!("{r:.2}"))
        }));
        rows.push(row(&format!("{prefix}ok"), &|p| {
            sent(p).map_or_else(|| "-".into(), |s| s.ok.to_string())
        }));
        rows.push(row(&format!("{prefix}429"), &|p| {
            sent(p).map_or_else(|| "-".into(), |s| s.rate_limited.to_string())
        }));
    }
    ResultTable { header, rows }
}
