//! The lines an external program is given and the lines it writes back (the README's
//! "External strategies" section is the reference): work items on its stdin, request
//! and loop-lag records on its stdout, all times CLOCK_MONOTONIC nanoseconds.
//!
//! Reading a record checks it against what the program was given and against the clock,
//! so a program that lies (an index it never got, a time in the future, chunks outside
//! its request) is caught here, with the reason.

use crate::client::{ErrorClass, Exchange};
use crate::workload::WorkItem;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// How far a program's clock reading may seem to precede ours, for the same instant:
/// the two readings that fix the strategy's zero are taken apart by well under this.
const CLOCK_SLACK: Duration = Duration::from_micros(200);

/// Where the strategy's zero lies on CLOCK_MONOTONIC, the clock `Instant` reads on
/// Linux and Python's `time.monotonic_ns()` reads: program times convert to instants
/// exactly.
#[derive(Debug, Clone, Copy)]
pub struct Zero {
    pub epoch: Instant,
    pub ns: u64,
}

impl Zero {
    /// The zero of a strategy that started at `epoch`.
    pub fn of(epoch: Instant) -> Zero {
        let now_ns = monotonic_ns();
        let since = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Zero {
            epoch,
            ns: now_ns.saturating_sub(since),
        }
    }

    /// The instant of a program's clock reading; `None` before the zero.
    fn instant(&self, ns: u64) -> Option<Instant> {
        self.epoch
            .checked_add(Duration::from_nanos(ns.checked_sub(self.ns)?))
    }

    fn ns_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        self.ns
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The line giving `item` (the dispatcher's slot `slot`, its index) to the program.
pub fn work_line(slot: usize, item: &WorkItem, zero: &Zero, stream: bool) -> Vec<u8> {
    let intended = zero.ns_of(zero.epoch + item.at);
    let mut line = serde_json::to_vec(&serde_json::json!({
        "index": slot,
        "intended_ns": intended,
        "prompt": item.prompt_text(),
        "prompt_tokens": item.prompt_tokens,
        "max_tokens": item.max_tokens,
        "stream": stream,
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// Whether a line is the program's `{"type": "ready"}`.
pub fn is_ready(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line)
        .is_ok_and(|v| v.get("type").and_then(serde_json::Value::as_str) == Some("ready"))
}

/// One request's record, as the program writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    index: u64,
    sent_ns: u64,
    #[serde(default)]
    first_token_ns: Option<u64>,
    end_ns: u64,
    #[serde(default)]
    chunk_ns: Vec<u64>,
    #[serde(default)]
    status: Option<u16>,
    outcome: String,
    #[serde(default)]
    output_tokens: Option<u32>,
    #[serde(default)]
    error: Option<String>,
}

/// A loop-lag record: how late each heartbeat of the program's event loop woke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LagLine {
    lag_ns: Vec<u64>,
}

/// What one line of the program's stdout says.
#[derive(Debug)]
pub enum ProgramLine {
    /// A request's record, for item `index` (checked against the clock, not yet
    /// against what the program was given).
    Request {
        index: usize,
        record: Record,
    },
    Lag(Vec<Duration>),
}

/// A request's record in instants, with the gaps between its content chunks.
#[derive(Debug)]
pub struct Record {
    pub exchange: Exchange,
    pub gaps: Vec<Duration>,
}

/// Reads one line (without its newline). `Err` says why it is not a record: not JSON,
/// an unknown field, a missing one; a request record that names its item but breaks a
/// rule comes back as `Err` with that index, so the item can be failed with the reason.
pub fn read_line(
    text: &[u8],
    zero: &Zero,
    now: Instant,
) -> Result<ProgramLine, (Option<usize>, String)> {
    let mut value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| (None, format!("not JSON: {e}")))?;
    let object = value
        .as_object_mut()
        .ok_or((None, "not a JSON object".to_string()))?;
    let kind = object.remove("type");
    match kind.as_ref().map(|k| k.as_str()) {
        Some(Some("lag")) => {
            let lag: LagLine = serde_json::from_value(value).map_err(|e| (None, e.to_string()))?;
            Ok(ProgramLine::Lag(
                lag.lag_ns.into_iter().map(Duration::from_nanos).collect(),
            ))
        }
        None | Some(Some("request")) => {
            let index = object
                .get("index")
                .and_then(serde_json::Value::as_u64)
                .and_then(|i| usize::try_from(i).ok());
            let line: RequestLine =
                serde_json::from_value(value).map_err(|e| (index, e.to_string()))?;
            let index = usize::try_from(line.index).unwrap_or(usize::MAX);
            let record = line.check(zero, now).map_err(|why| (Some(index), why))?;
            Ok(ProgramLine::Request { index, record })
        }
        Some(_) => Err((
            None,
            format!(
                "unknown record type {}: expected \"request\" or \"lag\"",
                kind.unwrap_or_default()
            ),
        )),
    }
}

impl RequestLine {
    /// The record in instants, if its times are possible: none before the strategy's
    /// zero or after `now`, in order (sent ≤ first token ≤ end, every chunk between
    /// sent and end, chunks in order), and its outcome one of llmbench's.
    fn check(self, zero: &Zero, now: Instant) -> Result<Record, String> {
        let at = |name: &str, ns: u64| {
            let instant = zero.instant(ns).ok_or_else(|| {
                format!(
                    "{name} {ns} is before the strategy's zero (LLMBENCH_ZERO_NS {})",
                    zero.ns
                )
            })?;
            match instant > now + CLOCK_SLACK {
                true => Err(format!(
                    "{name} {ns} is in the future: it is {} ns ahead of the clock when the line was read",
                    instant.duration_since(now).as_nanos()
                )),
                false => Ok(instant),
            }
        };
        let sent = at("sent_ns", self.sent_ns)?;
        let end = at("end_ns", self.end_ns)?;
        if end < sent {
            return Err(format!(
                "end_ns {} is before sent_ns {}",
                self.end_ns, self.sent_ns
            ));
        }
        let chunks = self
            .chunk_ns
            .iter()
            .map(|&ns| at("a chunk_ns", ns))
            .collect::<Result<Vec<_>, _>>()?;
        if chunks.windows(2).any(|w| w[1] < w[0]) {
            return Err("chunk_ns is not in order".into());
        }
        if chunks.iter().any(|c| *c < sent || *c > end) {
            return Err("a chunk_ns lies outside sent_ns … end_ns".into());
        }
        let first_token = match self.first_token_ns {
            Some(ns) => Some(at("first_token_ns", ns)?),
            None => chunks.first().copied(),
        };
        if first_token.is_some_and(|t| t < sent || t > end) {
            return Err("first_token_ns lies outside sent_ns … end_ns".into());
        }
        let error = match self.outcome.as_str() {
            "ok" => None,
            name => {
                let class = ErrorClass::ALL
                    .into_iter()
                    .find(|c| c.as_str() == name)
                    .ok_or_else(|| {
                        let classes: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
                        format!(
                            "outcome \"{name}\" is not one of ok, {}",
                            classes.join(", ")
                        )
                    })?;
                Some((class, self.error.unwrap_or_default()))
            }
        };
        let content_chunks = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        let gaps = chunks.windows(2).map(|w| w[1] - w[0]).collect();
        let exchange = Exchange {
            first_token,
            end,
            status: self.status,
            output_tokens: self.output_tokens.unwrap_or(content_chunks),
            content_chunks,
            tokens_counted: self.output_tokens.is_none(),
            error,
            ..Exchange::new(sent)
        };
        Ok(Record { exchange, gaps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zero() -> Zero {
        Zero::of(Instant::now() - Duration::from_secs(10))
    }

    fn read(zero: &Zero, text: &str) -> Result<ProgramLine, (Option<usize>, String)> {
        read_line(text.as_bytes(), zero, zero.epoch + Duration::from_secs(5))
    }

    #[test]
    fn a_record_converts_to_exact_instants() {
        let z = zero();
        let ms = |n: u64| z.ns + n * 1_000_000;
        let text = format!(
            r#"{{"index": 3, "sent_ns": {}, "end_ns": {}, "chunk_ns": [{}, {}], "status": 200, "outcome": "ok", "output_tokens": 2}}"#,
            ms(100),
            ms(300),
            ms(150),
            ms(170)
        );
        let Ok(ProgramLine::Request { index, record }) = read(&z, &text) else {
            panic!("not read")
        };
        assert_eq!(index, 3);
        let e = &record.exchange;
        assert_eq!(e.sent - z.epoch, Duration::from_millis(100));
        assert_eq!(e.first_token.unwrap() - z.epoch, Duration::from_millis(150));
        assert_eq!(e.end - z.epoch, Duration::from_millis(300));
        assert_eq!(record.gaps, [Duration::from_millis(20)]);
        assert_eq!(
            (e.output_tokens, e.content_chunks, e.error.is_none()),
            (2, 2, true)
        );
    }

    #[test]
    fn impossible_records_are_refused_with_the_reason() {
        let z = zero();
        let ms = |n: u64| z.ns + n * 1_000_000;
        let record = |sent: u64, end: u64, extra: &str| {
            format!(r#"{{"index": 1, "sent_ns": {sent}, "end_ns": {end}, "outcome": "ok"{extra}}}"#)
        };
        let why = |text: String| read(&z, &text).unwrap_err();
        assert!(
            why(record(ms(200), ms(100), ""))
                .1
                .contains("before sent_ns")
        );
        assert!(
            why(record(ms(100), ms(9000), ""))
                .1
                .contains("in the future")
        );
        assert!(
            why(record(z.ns - 5, ms(100), ""))
                .1
                .contains("before the strategy's zero")
        );
        let outside = format!(r#", "chunk_ns": [{}]"#, ms(400));
        assert!(
            why(record(ms(100), ms(200), &outside))
                .1
                .contains("outside")
        );
        let lie = why(record(ms(1), ms(2), r#", "outcome2": 1"#));
        assert_eq!(lie.0, Some(1), "the item is named, so it can be failed");
        assert!(lie.1.contains("unknown field"));
        let bad = why(record(ms(1), ms(2), "").replace("\"ok\"", "\"fine\""));
        assert!(bad.1.contains("not one of ok, rate_limited"));
        assert_eq!(why("{".into()).0, None);
        assert!(
            matches!(read(&z, r#"{"type": "lag", "lag_ns": [5, 7]}"#), Ok(ProgramLine::Lag(l)) if l.len() == 2)
        );
    }
}
