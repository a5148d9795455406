//! Replaying a recorded trace: one request per row, with its arrival time, prompt length
//! and completion length.
//!
//! Accepted: CSV with a header row, or JSONL (one object per line). Columns are found by
//! name, case-insensitively, so the public Azure LLM inference traces load as they are:
//! - time: `TIMESTAMP` / `timestamp` / `time`: seconds (a number) or a date-time such as
//!   `2023-11-16 18:15:46.6805900` (time zones are ignored; only differences matter);
//! - prompt: `ContextTokens` / `input_tokens` / `prompt_tokens`;
//! - completion: `GeneratedTokens` / `output_tokens` / `max_tokens`.

use crate::scenario::limits::{MAX_REQUESTS, MAX_SECONDS, MAX_TOKENS};
use std::path::Path;
use std::time::Duration;

const TIME: &[&str] = &["timestamp", "time"];
const PROMPT: &[&str] = &["contexttokens", "input_tokens", "prompt_tokens"];
const OUTPUT: &[&str] = &["generatedtokens", "output_tokens", "max_tokens"];

/// One replayed request, its time relative to the trace's first row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRow {
    pub at: Duration,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// Why a file the workload reads (a trace, prompts) could not be used: the file, the
/// line and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RowError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Reads a trace, rows sorted by time and times scaled by `time_scale`.
pub fn load(path: &Path, time_scale: f64) -> Result<Vec<TraceRow>, RowError> {
    let file = path.display().to_string();
    let fail = |line, message: String| RowError {
        file: file.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(None, format!("cannot read the trace: {e}")))?;
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let raw = if is_jsonl {
        parse_jsonl(&text)
    } else {
        parse_csv(&text)
    };
    let mut rows = raw.map_err(|(line, message)| fail(line, message))?;
    if rows.is_empty() {
        return Err(fail(None, "the trace has no rows".into()));
    }
    if rows.len() as u64 > MAX_REQUESTS {
        return Err(fail(
            None,
            format!("the trace has more than {MAX_REQUESTS} rows, the most a run can hold"),
        ));
    }
    if let Some(line) = mixed_time_kinds(&rows) {
        return Err(fail(
            Some(line),
            "this row's time is a date-time and an earlier one's is seconds (or the other way round): write every time the same way".into(),
        ));
    }
    rows.sort_by(|a, b| a.time.total_cmp(&b.time));
    let origin = rows[0].time;
    let span = (rows[rows.len() - 1].time - origin) * time_scale;
    if span > MAX_SECONDS {
        return Err(fail(
            None,
            format!(
                "the trace spans {span:.0} s after time_scale, more than {MAX_SECONDS} s (about 115 days)"
            ),
        ));
    }
    Ok(rows
        .into_iter()
        .map(|row| TraceRow {
            at: Duration::from_secs_f64((row.time - origin) * time_scale),
            prompt_tokens: row.prompt.max(1),
            output_tokens: row.output.max(1),
        })
        .collect())
}

/// The line of the first row whose time is written differently from the first row's.
fn mixed_time_kinds(rows: &[RawRow]) -> Option<usize> {
    let first = rows[0].dated;
    rows.iter().find(|r| r.dated != first).map(|r| r.line)
}

/// A row as read: its time in seconds (and whether it was written as a date-time), its
/// lengths, and its line for messages.
struct RawRow {
    time: f64,
    dated: bool,
    prompt: u32,
    output: u32,
    line: usize,
}
type LineError = (Option<usize>, String);

fn parse_csv(text: &str) -> Result<Vec<RawRow>, LineError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| (Some(1), e.to_string()))?
        .clone();
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
            .ok_or_else(|| (Some(1), missing_column(names)))
    };
    let (time, prompt, output) = (column(TIME)?, column(PROMPT)?, column(OUTPUT)?);
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let line = Some(i + 2);
            let record = record.map_err(|e| (line, e.to_string()))?;
            let field = |c: usize| record.get(c).unwrap_or("");
            let row = || -> Result<RawRow, String> {
                let (time, dated) = time_value(field(time))?;
                Ok(RawRow {
                    time,
                    dated,
                    prompt: count(field(prompt))?,
                    output: count(field(output))?,
                    line: i + 2,
                })
            };
            row().map_err(|m| (line, m))
        })
        .collect()
}

fn parse_jsonl(text: &str) -> Result<Vec<RawRow>, LineError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let at = Some(i + 1);
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|e| (at, format!("not a JSON object: {e}")))?;
            let find = |names: &[&str]| {
                object
                    .iter()
                    .find(|(k, _)| names.contains(&k.to_ascii_lowercase().as_str()))
                    .map(|(_, v)| v)
                    .ok_or_else(|| (at, missing_column(names)))
            };
            let text_of =
                |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let (time, dated) = time_value(&text_of(find(TIME)?)).map_err(|m| (at, m))?;
            let prompt = count(&text_of(find(PROMPT)?)).map_err(|m| (at, m))?;
            let output = count(&text_of(find(OUTPUT)?)).map_err(|m| (at, m))?;
            Ok(RawRow {
                time,
                dated,
                prompt,
                output,
                line: i + 1,
            })
        })
        .collect()
}

fn missing_column(names: &[&str]) -> String {
    format!("no column named any of {}", names.join(", "))
}

/// Seconds, or a civil date-time turned into seconds (and `true`).
fn time_value(s: &str) -> Result<(f64, bool), String> {
    if let Ok(seconds) = s.parse::<f64>() {
        if !(seconds.is_finite() && seconds.abs() <= 1e12) {
            return Err(format!(
                "time \"{s}\" is not a number of seconds (finite, at most 1e12 in size)"
            ));
        }
        return Ok((seconds, false));
    }
    // Drop a zone suffix ("Z", "+00:00"): only differences between rows matter.
    let civil = s.trim_end_matches('Z').split('+').next().unwrap_or(s);
    let dt: jiff::civil::DateTime = civil.parse().map_err(|_| {
        format!("timestamp \"{s}\" is neither seconds nor a date-time like 2023-11-16 18:15:46.68")
    })?;
    let since_epoch = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?;
    Ok((since_epoch.timestamp().as_nanosecond() as f64 / 1e9, true))
}

fn count(s: &str) -> Result<u32, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=MAX_TOKENS).contains(v))
        .map(|v| v.round() as u32)
        .ok_or_else(|| format!("token count \"{s}\" is not a whole number from 0 to {MAX_TOKENS}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn azure_csv_with_datetimes_and_a_time_scale() {
        let (_dir, path) = write(
            "azure.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             2023-11-16 18:15:46.6805900,374,44\n\
             2023-11-16 18:15:50.9951690,396,109\n\
             2023-11-16 18:15:47.1805900,879,0\n",
        );
        let rows = load(&path, 0.5).unwrap();
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.at.as_millis(), r.prompt_tokens, r.output_tokens))
            .collect();
        // Sorted by time, relative to the first row, halved; a 0-token completion asks for 1.
        assert_eq!(summary, vec![(0, 374, 44), (250, 879, 1), (2157, 396, 109)]);
    }

    #[test]
    fn jsonl_with_numeric_seconds() {
        let (_dir, path) = write(
            "t.jsonl",
            "{\"timestamp\": 10.5, \"input_tokens\": 5, \"output_tokens\": 7}\n\n{\"timestamp\": 12, \"input_tokens\": 6, \"output_tokens\": 8}\n",
        );
        let rows = load(&path, 1.0).unwrap();
        assert_eq!(
            rows[1],
            TraceRow {
                at: Duration::from_millis(1500),
                prompt_tokens: 6,
                output_tokens: 8
            }
        );
    }

    #[test]
    fn times_that_cannot_be_a_schedule_are_refused() {
        for (text, says) in [
            (
                "time,prompt_tokens,output_tokens\nnan,1,1\n",
                ":2: time \"nan\" is not a number of seconds",
            ),
            (
                "time,prompt_tokens,output_tokens\n0,1,1\ninf,1,1\n",
                ":3: time \"inf\" is not a number of seconds",
            ),
            (
                "time,prompt_tokens,output_tokens\n0,1,1\n1e300,1,1\n",
                ":3: time \"1e300\" is not a number of seconds",
            ),
            (
                "time,prompt_tokens,output_tokens\n0,1,1\n1e11,1,1\n",
                "the trace spans 100000000000 s",
            ),
            (
                "time,prompt_tokens,output_tokens\n1700000000,1,1\n2023-11-16 18:15:46,1,1\n",
                ":3: this row's time is a date-time and an earlier one's is seconds",
            ),
            (
                "time,prompt_tokens,output_tokens\n0,1e12,1\n",
                "token count \"1e12\" is not a whole number from 0",
            ),
        ] {
            let (_dir, path) = write("t.csv", text);
            let err = load(&path, 1.0).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let (_dir, path) = write(
            "bad.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n1,2,3\n2,x,3\n",
        );
        let err = load(&path, 1.0).unwrap_err().to_string();
        assert!(
            err.ends_with("bad.csv:3: token count \"x\" is not a whole number from 0 to 10000000"),
            "{err}"
        );
        let (_dir, path) = write("cols.csv", "when,ContextTokens\n1,2\n");
        let err = load(&path, 1.0).unwrap_err().to_string();
        assert!(
            err.contains("cols.csv:1: no column named any of timestamp, time"),
            "{err}"
        );
        let err = load(Path::new("nope.csv"), 1.0).unwrap_err().to_string();
        assert!(err.starts_with("nope.csv: cannot read the trace"), "{err}");
    }
}
