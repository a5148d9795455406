//! `requests.csv`: one row per request and strategy, timestamps in microseconds since
//! the strategy's start. Empty cells mean "did not happen" (never sent, no token).
//!
//! The file is started (header only) with the results folder, and each request's row is
//! appended as the request finishes ([`RowWriter`]), so after a kill it holds every
//! finished request. Rows are in the order requests finished; readers order them.
//!
//! Owns the file both ways: the writer that creates and appends to it and the reader
//! that turns it back into records. It imports no other format.

use crate::recorder::{ErrorClass, Outcome, RecordSink, RequestRecord};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::Duration;

pub const FILE: &str = "requests.csv";

const HEADER: [&str; 19] = [
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
    "tokens_from",
    "content_chunks",
    "attempts",
    "backoff_us",
    "error",
    "cached_tokens",
    "connect_us",
];

/// Creates `requests.csv` in `dir` with its header row and nothing else.
pub fn create(dir: &Path) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(HEADER)?;
    super::atomic::write(&dir.join(FILE), &into_bytes(out)?)
}

/// Streams one strategy's rows into `requests.csv` as its requests finish: the
/// recorder hands each record over on the request's task (a channel send, no I/O; a
/// wait only when [`MOST_WAITING`] rows are not yet written), and a
/// thread of its own formats and appends them in batches, one write every few
/// milliseconds ([`GATHER`]). After a kill the file holds every row but those of the
/// last few milliseconds; [`read`] drops a row cut in half. Rows waiting to be written
/// are bounded ([`MOST_WAITING`]): past it, a recording thread waits for the writer.
pub struct RowWriter {
    sender: mpsc::Sender<RowMessage>,
    thread: Mutex<Option<std::thread::JoinHandle<std::io::Result<()>>>>,
    path: PathBuf,
    backlog: Arc<Backlog>,
}

/// The most rows handed over and not yet written before a request's thread waits for
/// the writer: about 50 MB of records, three seconds of rows at 80,000 requests a
/// second. A few hundred wait normally (one write every [`GATHER`]); a disk that stalls,
/// or a writer kept off its core (a client at real-time priority shares it), would
/// otherwise let them pile up without bound.
const MOST_WAITING: usize = 1 << 18;

/// Closes a [`Backlog`] when dropped.
struct Closed<'a>(&'a Backlog);

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.taken(0, true);
    }
}

/// The rows handed over and not yet written, at most `most` but for the threads let go
/// at once, and a way to wait for room.
struct Backlog {
    most: usize,
    rows: AtomicUsize,
    /// The writer has stopped (done, or failed): nothing waits for it any more.
    closed: AtomicBool,
    lock: Mutex<()>,
    room: Condvar,
}

impl Backlog {
    fn new(most: usize) -> Backlog {
        Backlog {
            most,
            rows: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    /// Counts a row in; past `most`, waits until the writer has caught up below it (or
    /// stopped). A waiting thread's row is not counted while it waits (it is not sent
    /// yet, so the writer could never take it), so any number of threads may wait. No
    /// wake-up is missed: [`Backlog::taken`] changes the counts before it takes the
    /// lock to notify, and the condition is checked under that lock.
    fn add(&self) {
        if self.rows.fetch_add(1, Ordering::Relaxed) < self.most {
            return;
        }
        self.rows.fetch_sub(1, Ordering::Relaxed);
        let lock = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let full = |_: &mut ()| {
            self.rows.load(Ordering::Relaxed) >= self.most && !self.closed.load(Ordering::Relaxed)
        };
        drop(
            self.room
                .wait_while(lock, full)
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.rows.fetch_add(1, Ordering::Relaxed);
    }

    /// `rows` are written (or `closed`: the writer stopped); wakes whoever waits.
    fn taken(&self, rows: usize, closed: bool) {
        self.rows.fetch_sub(rows, Ordering::Relaxed);
        self.closed.fetch_or(closed, Ordering::Relaxed);
        let _lock = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.room.notify_all();
    }
}

enum RowMessage {
    Row(RequestRecord),
    End,
}

impl RowWriter {
    /// Starts appending the rows of strategy `label` to `dir`'s `requests.csv`.
    pub fn start(dir: &Path, label: &str) -> std::io::Result<Arc<RowWriter>> {
        RowWriter::start_with_room(dir, label, MOST_WAITING)
    }

    /// [`RowWriter::start`], with up to `most_waiting` rows waiting to be written.
    fn start_with_room(
        dir: &Path,
        label: &str,
        most_waiting: usize,
    ) -> std::io::Result<Arc<RowWriter>> {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        let (sender, receiver) = mpsc::channel();
        let label = label.to_string();
        let backlog = Arc::new(Backlog::new(most_waiting));
        let writer_backlog = backlog.clone();
        let thread = std::thread::Builder::new()
            .name("llmbench-rows".into())
            .spawn(move || {
                // Closed however the writer stops, a panic included: no recorder waits
                // for it then.
                let _closed = Closed(&writer_backlog);
                write_rows(file, &label, &receiver, &writer_backlog)
            })?;
        Ok(Arc::new(RowWriter {
            sender,
            thread: Mutex::new(Some(thread)),
            path,
            backlog,
        }))
    }

    /// Waits until every row handed over is on disk; an error (a full disk) names the
    /// file. Rows handed over later are not written, nor those of a recorder still
    /// waiting for room then (a task that outlived its strategy).
    pub fn finish(&self) -> std::io::Result<()> {
        let _ = self.sender.send(RowMessage::End);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let written = match thread.map(std::thread::JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(_)) => Err(std::io::Error::other("the row writer stopped")),
            None => Ok(()),
        };
        written.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot append to {}: {e}", self.path.display()),
            )
        })
    }
}

impl RecordSink for RowWriter {
    fn record(&self, record: &RequestRecord) {
        self.backlog.add();
        let _ = self.sender.send(RowMessage::Row(record.clone()));
    }
}

/// How long the writer lets rows gather once it has caught up: the most a finished
/// request's row waits before it is on its way to disk.
const GATHER: Duration = Duration::from_millis(10);

/// The writer thread: rows until [`RowMessage::End`] (or every sender is gone), written
/// to the file a batch at a time, then synced to disk.
fn write_rows(
    mut file: std::fs::File,
    label: &str,
    receiver: &mpsc::Receiver<RowMessage>,
    backlog: &Backlog,
) -> std::io::Result<()> {
    // One buffer for every batch: a fresh one each time would have its pages returned
    // to the system and faulted back in, tens of times a second.
    let mut rows = Vec::new();
    let mut next = receiver.recv().ok();
    while let Some(RowMessage::Row(first)) = next {
        let (gathered, count) = gather(&mut rows, label, first, receiver);
        // The batch in one write, so that a row is never split between two writes.
        std::io::Write::write_all(&mut file, &rows)?;
        rows.clear();
        backlog.taken(count, false);
        next = match gathered {
            Gathered::End => None,
            // Let rows gather rather than block at once: a sender wakes a blocked
            // receiver with a futex call and a context switch on its own thread, which
            // at tens of thousands of requests a second cost the client more than all
            // its recording.
            Gathered::CaughtUp => {
                std::thread::sleep(GATHER);
                match receiver.try_recv() {
                    Ok(message) => Some(message),
                    Err(mpsc::TryRecvError::Empty) => receiver.recv().ok(),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            }
        };
    }
    file.sync_data()
}

/// What ended a batch of rows.
enum Gathered {
    /// No row was waiting.
    CaughtUp,
    /// The strategy's rows are all in.
    End,
}

/// Formats `first` and every row already waiting into `rows`; with how many there were.
fn gather(
    rows: &mut Vec<u8>,
    label: &str,
    first: RequestRecord,
    receiver: &mpsc::Receiver<RowMessage>,
) -> (Gathered, usize) {
    let mut record = first;
    let mut count = 0;
    let gathered = loop {
        write_row(rows, label, &record);
        count += 1;
        record = match receiver.try_recv() {
            Ok(RowMessage::Row(record)) => record,
            Err(mpsc::TryRecvError::Empty) => break Gathered::CaughtUp,
            Ok(RowMessage::End) | Err(mpsc::TryRecvError::Disconnected) => break Gathered::End,
        };
    };
    (gathered, count)
}

/// One record as a row of `requests.csv`, as the `csv` crate writes it (the header,
/// and the reader, are its). Formatted here rather than through `csv::Writer`, whose
/// per-field work (buffering, a scan of every byte for quoting) was most of the row's
/// cost: the writer thread shares the client's cores, and this runs for every request.
/// Numbers never need quoting; only the text fields are checked.
fn write_row(out: &mut Vec<u8>, label: &str, r: &RequestRecord) {
    let mut number = itoa::Buffer::new();
    let mut field = |out: &mut Vec<u8>, value: Option<u64>| {
        if let Some(value) = value {
            out.extend_from_slice(number.format(value).as_bytes());
        }
        out.push(b',');
    };
    let us = |d: Option<Duration>| d.map(crate::recorder::micros);
    text_field(out, label);
    field(out, Some(r.index.into()));
    field(out, Some(r.prompt_tokens.into()));
    field(out, Some(r.max_tokens.into()));
    field(out, us(Some(r.intended)));
    field(out, us(r.sent));
    field(out, us(r.attempt_sent));
    field(out, us(r.first_token));
    field(out, us(r.end));
    field(out, r.status.map(u64::from));
    text_field(out, r.outcome.as_str());
    field(out, Some(r.output_tokens.into()));
    text_field(out, tokens_from(r));
    field(out, Some(r.content_chunks.into()));
    field(out, Some(r.attempts.into()));
    field(out, us(Some(r.backoff)));
    text_field(out, r.error.as_deref().unwrap_or(""));
    field(out, Some(r.cached_tokens.into()));
    field(out, us(r.connect));
    // The last field's comma is the row's end.
    *out.last_mut().expect("a row was written") = b'\n';
}

/// A text field and its comma, quoted as `csv` quotes by default (`QuoteStyle::Necessary`):
/// when it holds a comma, a quote or a line break, with its quotes doubled.
fn text_field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b',');
}

fn into_bytes(out: csv::Writer<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    out.into_inner().map_err(|e| e.into_error())
}

/// `usage` (the server's count), `counted` (from the stream), or empty (no answer).
fn tokens_from(r: &RequestRecord) -> &'static str {
    match (r.is_ok(), r.tokens_counted) {
        (false, _) => "",
        (true, true) => "counted",
        (true, false) => "usage",
    }
}

/// Reads the records back, by strategy label and in index order: every record in
/// memory, for small runs and tests; the report streams them with [`read_each`].
pub fn read(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<RequestRecord>>> {
    let mut by_strategy: BTreeMap<String, Vec<RequestRecord>> = BTreeMap::new();
    read_each(path, |label, record| {
        by_strategy
            .entry(label.to_string())
            .or_default()
            .push(record);
    })?;
    for records in by_strategy.values_mut() {
        records.sort_by_key(|r| r.index);
    }
    Ok(by_strategy)
}

/// Hands each record to `each` with its strategy's label, in the file's order, one row
/// in memory at a time, without a last row cut off by a kill ([`Rows`]).
pub fn read_each(path: &Path, mut each: impl FnMut(&str, RequestRecord)) -> anyhow::Result<()> {
    let mut rows = Rows::open(path)?;
    let columns = rows.columns().clone();
    while let Some(row) = rows.next() {
        let row = row?;
        let (label, record) = parse_row(&columns, &row).with_context(|| rows.at())?;
        each(label, record);
    }
    Ok(())
}

/// The rows of a `requests.csv` as text, in file order, one in memory at a time. A last
/// row cut off by a kill in the middle of an append is left out: the file does not end
/// its line, or (cut right after a line break inside a quoted field) the row is short
/// or does not parse, so each row is taken once the next has been read. Any other row
/// that does not read is an error naming the file and line.
pub struct Rows {
    path: PathBuf,
    columns: csv::StringRecord,
    cut: bool,
    rows: std::iter::Peekable<csv::StringRecordsIntoIter<std::fs::File>>,
    /// Rows read so far.
    read: usize,
}

impl Rows {
    pub fn open(path: &Path) -> anyhow::Result<Rows> {
        let cannot_read = || format!("cannot read {}", path.display());
        let mut file = std::fs::File::open(path).with_context(cannot_read)?;
        let cut = ends_unfinished(&mut file).with_context(cannot_read)?;
        let mut reader = csv::Reader::from_reader(file);
        let columns = reader
            .headers()
            .with_context(|| format!("{}: no header row", path.display()))?
            .clone();
        Ok(Rows {
            path: path.to_path_buf(),
            columns,
            cut,
            rows: reader.into_records().peekable(),
            read: 0,
        })
    }

    /// The file's own header: readers find columns by it, so a file from an older
    /// version (fewer columns) still reads, a missing column as empty.
    pub fn columns(&self) -> &csv::StringRecord {
        &self.columns
    }

    /// `file:line` of the row last read, as its errors name it.
    pub fn at(&self) -> String {
        format!("{}:{}", self.path.display(), self.read + 1)
    }
}

impl Iterator for Rows {
    type Item = anyhow::Result<csv::StringRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        self.read += 1;
        let whole = row.as_ref().is_ok_and(|r| r.len() == self.columns.len());
        if self.rows.peek().is_none() && (self.cut || !whole) {
            return None;
        }
        Some(row.with_context(|| self.at()))
    }
}

/// Whether the file's last byte is not a line end (a row cut off); rewinds it.
fn ends_unfinished(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut last = [0u8];
    if len > 0 {
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(len > 0 && last[0] != b'\n')
}

/// One row as its strategy's label and record.
fn parse_row<'r>(
    columns: &csv::StringRecord,
    row: &'r csv::StringRecord,
) -> anyhow::Result<(&'r str, RequestRecord)> {
    let cell = |name: &str| {
        columns
            .iter()
            .position(|h| h == name)
            .and_then(|c| row.get(c))
            .unwrap_or("")
    };
    let number = |name: &str| {
        cell(name)
            .parse::<u32>()
            .with_context(|| format!("bad {name}"))
    };
    let time = |name: &str| parse_us(cell(name)).with_context(|| format!("bad {name}"));
    let record = RequestRecord {
        index: number("index")?,
        prompt_tokens: number("prompt_tokens")?,
        max_tokens: number("max_tokens")?,
        intended: time("intended_us")?.unwrap_or_default(),
        sent: time("sent_us")?,
        attempt_sent: time("attempt_sent_us")?,
        first_token: time("first_token_us")?,
        end: time("end_us")?,
        status: cell("status").parse().ok(),
        output_tokens: number("output_tokens")?,
        content_chunks: number("content_chunks")?,
        tokens_counted: cell("tokens_from") == "counted",
        // Absent from files written before the column existed.
        cached_tokens: cell("cached_tokens").parse().unwrap_or(0),
        // Absent (empty) from files written before the column existed.
        connect: time("connect_us")?,
        outcome: parse_outcome(cell("outcome")).context("unknown outcome")?,
        attempts: number("attempts")?,
        backoff: time("backoff_us")?.unwrap_or_default(),
        error: Some(cell("error"))
            .filter(|e| !e.is_empty())
            .map(str::to_string),
    };
    let label = columns
        .iter()
        .position(|h| h == "strategy")
        .and_then(|c| row.get(c))
        .unwrap_or("");
    Ok((label, record))
}

/// Parses a `requests.csv` outcome cell.
fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "ok" => Some(Outcome::Ok),
        "cancelled" => Some(Outcome::Cancelled),
        "dropped" => Some(Outcome::Dropped),
        "over_budget" => Some(Outcome::OverBudget),
        other => ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == other)
            .map(Outcome::Failed),
    }
}

/// Parses a microsecond cell; empty means "did not happen".
fn parse_us(s: &str) -> Result<Option<Duration>, std::num::ParseIntError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>().map(|us| Some(Duration::from_micros(us)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u32) -> RequestRecord {
        RequestRecord {
            index,
            // Long, so that a few rows fill a pipe's buffer.
            error: Some("x".repeat(4096)),
            ..RequestRecord::unsent(&item())
        }
    }

    /// A writer that cannot write (its file a pipe nobody reads) holds the recording
    /// threads back once its room is full, more of them than it has room for included,
    /// instead of letting rows pile up; they go on once it writes again.
    #[test]
    #[cfg(target_os = "linux")]
    fn rows_past_the_room_wait_for_a_writer_that_cannot_write() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::OpenOptionsExt;
        const ROOM: usize = 2;
        const THREADS: u32 = 4;
        const ROWS: u32 = 64;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a path that is a valid C string; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Opened for reading first (without blocking), so that the writer's open does
        // not wait for a reader; nothing is read until the end. The pipe holds 64 KiB
        // whatever the page size (16 pages by default).
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor this test owns.
        assert!(unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 16) } >= 1 << 16);
        let rows = RowWriter::start_with_room(dir.path(), "s", ROOM).unwrap();
        // Rows of 4 KiB from more threads than there is room: the pipe fills, the
        // writer blocks in a write, and every thread ends up waiting for room.
        let recorders: Vec<_> = (0..THREADS)
            .map(|thread| {
                let rows = rows.clone();
                std::thread::spawn(move || {
                    for index in 0..ROWS {
                        rows.record(&record(thread * ROWS + index));
                    }
                })
            })
            .collect();
        let waiting = || rows.backlog.rows.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        while waiting() < ROOM && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Settled: nothing moves while the pipe stays full.
        std::thread::sleep(Duration::from_millis(300));
        let held = waiting();
        assert!(
            (ROOM..=ROOM + THREADS as usize).contains(&held),
            "{held} rows waiting with a room of {ROOM}"
        );
        assert!(
            recorders.iter().all(|r| !r.is_finished()),
            "a thread handed over all its rows past the room"
        );
        // The reader drains the pipe: the writer writes, the recorders go on.
        let drain = std::thread::spawn(move || {
            let mut read = 0;
            let mut buffer = vec![0; 1 << 16];
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => read += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            read
        });
        for recorder in recorders {
            recorder.join().unwrap();
        }
        // Every row written; the one error is the pipe's refusal to be synced.
        let finished = rows.finish();
        assert_eq!(
            finished.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::InvalidInput)
        );
        drop(rows);
        let read = drain.join().unwrap();
        assert!(read >= (THREADS * ROWS * 4096) as usize, "{read} bytes");
    }

    #[test]
    fn every_outcome_cell_reads_back() {
        let outcomes = [
            Outcome::Ok,
            Outcome::Cancelled,
            Outcome::Dropped,
            Outcome::OverBudget,
        ]
        .into_iter()
        .chain(ErrorClass::ALL.map(Outcome::Failed));
        for outcome in outcomes {
            assert_eq!(parse_outcome(outcome.as_str()), Some(outcome));
        }
        assert_eq!(parse_outcome("no such outcome"), None);
        assert_eq!(parse_us(""), Ok(None));
        assert_eq!(parse_us("1500"), Ok(Some(Duration::from_micros(1500))));
    }

    #[test]
    fn rows_are_written_as_they_always_were() {
        let failed = RequestRecord {
            index: 7,
            prompt_tokens: 16,
            max_tokens: 16,
            intended: Duration::from_micros(1500),
            sent: Some(Duration::from_micros(2000)),
            attempt_sent: Some(Duration::from_micros(2500)),
            first_token: None,
            end: Some(Duration::from_micros(3000)),
            status: Some(429),
            output_tokens: 0,
            content_chunks: 0,
            tokens_counted: false,
            cached_tokens: 3,
            outcome: Outcome::Failed(ErrorClass::RateLimited),
            attempts: 2,
            backoff: Duration::from_micros(500),
            error: Some("HTTP 429: \"slow, down\"".into()),
            connect: Some(Duration::from_nanos(120_999)),
        };
        let ok = RequestRecord {
            first_token: Some(Duration::from_micros(u64::MAX / 1000)),
            status: Some(200),
            output_tokens: 9,
            content_chunks: 4,
            tokens_counted: true,
            outcome: Outcome::Ok,
            error: None,
            connect: None,
            ..failed.clone()
        };
        let mut out = Vec::new();
        for record in [&failed, &ok, &RequestRecord::unsent(&item())] {
            write_row(&mut out, "joinset-64", record);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "joinset-64,7,16,16,1500,2000,2500,,3000,429,rate_limited,0,,0,2,500,\"HTTP 429: \"\"slow, down\"\"\",3,120\n\
             joinset-64,7,16,16,1500,2000,2500,18446744073709551,3000,200,ok,9,counted,4,2,500,,3,\n\
             joinset-64,3,4,5,250000,,,,,,cancelled,0,,0,0,0,,0,\n"
        );
    }

    #[test]
    fn text_fields_are_quoted_as_the_csv_crate_quotes_them() {
        let texts = [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "line\nbreak",
            "cr\rhere",
            " padded ",
            "#x",
            "é, ü",
            "\"",
        ];
        for text in texts {
            let record = RequestRecord {
                error: Some(text.into()),
                ..RequestRecord::unsent(&item())
            };
            let mut ours = Vec::new();
            write_row(&mut ours, text, &record);
            let mut theirs = csv::Writer::from_writer(Vec::new());
            let fields = [
                text,
                "3",
                "4",
                "5",
                "250000",
                "",
                "",
                "",
                "",
                "",
                "cancelled",
                "0",
                "",
                "0",
                "0",
                "0",
                text,
                "0",
                "",
            ];
            theirs.write_record(fields).unwrap();
            assert_eq!(ours, into_bytes(theirs).unwrap(), "{text:?}");
        }
    }

    fn item() -> crate::workload::WorkItem {
        crate::workload::WorkItem {
            index: 3,
            prompt: None,
            at: Duration::from_millis(250),
            prompt_tokens: 4,
            max_tokens: 5,
            shared_prefix: 0,
        }
    }

    #[test]
    fn a_row_cut_off_by_a_kill_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let row = "serial,0,10,5,0,1,1,2,3,200,ok,5,usage,5,1,0,,0,\n";
        let path = dir.path().join(FILE);
        let whole = format!("{}{row}", std::fs::read_to_string(&path).unwrap());
        std::fs::write(&path, format!("{whole}{}", &row[..20])).unwrap();
        assert_eq!(read(&path).unwrap()["serial"].len(), 1);
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(read(&path).unwrap()["serial"].len(), 1);
    }
}
