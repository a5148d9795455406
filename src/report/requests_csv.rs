//! `requests.csv`: one row per request and strategy, timestamps in microseconds since
//! the strategy's start. Empty cells mean "did not happen" (never sent, no token).

use crate::result::RunResult;
use std::path::Path;

pub const FILE: &str = "requests.csv";

const HEADER: [&str; 16] = [
    "strategy",
    "index",
    "prompt_tokens",
    "max_tokens",
    "intended_us",
    "sent_us",
    "attempt_sent_us",
    "first_token_us",
    "end_us",
    "status",
    "outcome",
    "output_tokens",
    "content_chunks",
    "attempts",
    "backoff_us",
    "error",
];

pub fn write(dir: &Path, run: &RunResult) -> std::io::Result<()> {
    let mut out = csv::Writer::from_path(dir.join(FILE))?;
    out.write_record(HEADER)?;
    let us = |d: Option<std::time::Duration>| {
        d.map(|d| crate::recorder::micros(d).to_string())
            .unwrap_or_default()
    };
    for strategy in &run.strategies {
        for r in &strategy.records {
            out.write_record([
                strategy.label.as_str(),
                &r.index.to_string(),
                &r.prompt_tokens.to_string(),
                &r.max_tokens.to_string(),
                &us(Some(r.intended)),
                &us(r.sent),
                &us(r.attempt_sent),
                &us(r.first_token),
                &us(r.end),
                &r.status.map(|s| s.to_string()).unwrap_or_default(),
                r.outcome.as_str(),
                &r.output_tokens.to_string(),
                &r.content_chunks.to_string(),
                &r.attempts.to_string(),
                &us(Some(r.backoff)),
                r.error.as_deref().unwrap_or(""),
            ])?;
        }
    }
    out.flush()
}
