//! The merged `requests.csv`: every part's rows by strategy (in summary order), then by
//! intended time, then index, rows that tie in the parts' order and then their own; and
//! each strategy's send rates, measured over those rows as a single run measures them
//! over its records.
//!
//! A part's rows are in the order its requests finished, so they are sorted here, in
//! memory that does not grow with the run: an external merge sort. The rows are read
//! into runs of at most [`Spill::run_bytes`] (32 MiB) each, sorted; a full run goes to
//! an anonymous temporary file in the merged folder (gone when closed, even after a
//! kill). The runs are merged [`Spill::fan_in`] (64) at a time, one row and one 8 KiB
//! read buffer of each in memory: whenever that many are spilled (so no more files
//! than that are open at once), and at the end until one last pass writes the file. So the
//! sort holds one run's rows at once, plus the last run's while merging and about a
//! megabyte of heads and buffers; rows that fit in one run never touch a temporary file.

use crate::report::{atomic, requests_csv};
use anyhow::{Context, bail};
use csv::StringRecord;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Seek;
use std::path::{Path, PathBuf};

/// How much the sort holds in memory.
#[derive(Debug, Clone, Copy)]
pub struct Spill {
    /// The memory of one sorted run's rows, at most: their text and [`ROW_OVERHEAD`]
    /// each (a run ends with the row that reaches it).
    pub run_bytes: usize,
    /// How many runs one pass merges.
    pub fan_in: usize,
}

impl Spill {
    pub const DEFAULT: Spill = Spill {
        run_bytes: 32 << 20,
        fan_in: 64,
    };
}

/// What a row held in memory takes besides its text, about: its key, its record and the
/// record's bounds of 18 fields.
const ROW_OVERHEAD: usize = 256;

/// A strategy's scheduled and achieved send rates, per second.
pub type SendRates = (Option<f64>, Option<f64>);

/// Writes `out`'s `requests.csv` from the parts' files (in the order given, which ties
/// keep); returns the send rates of each of `labels`, in their order. A part's file that
/// does not read, or whose columns differ from the others', is an error naming it.
pub fn write(
    parts: &[PathBuf],
    labels: &[String],
    out: &Path,
    spill: Spill,
) -> anyhow::Result<Vec<SendRates>> {
    let Sorted {
        header,
        mut runs,
        sends,
    } = sort(parts, labels, out, spill)?;
    let order = Order::new(&header, labels);
    let fan_in = spill.fan_in.max(2);
    while runs.len() > fan_in {
        runs = merge_groups(runs, fan_in, &order, out)?;
    }
    atomic::write_with(&out.join(requests_csv::FILE), |file| {
        let mut writer = csv::Writer::from_writer(file);
        writer.write_record(&header)?;
        for row in Merged::new(runs, &order) {
            // The whole chain of causes: an anyhow error shows only its outermost.
            let row = row.map_err(|e| std::io::Error::other(format!("{e:#}")))?;
            writer.write_record(&row)?;
        }
        writer.flush()
    })?;
    Ok(sends.iter().map(Sends::rates).collect())
}

/// The parts' rows in sorted runs, with what their send rates are measured from.
struct Sorted {
    header: StringRecord,
    /// Every run but the last spilled, in the order their rows came.
    runs: Vec<SortedRun>,
    /// By label.
    sends: Vec<Sends>,
}

/// Reads the parts' rows in order into sorted runs of at most `spill.run_bytes`; once
/// `spill.fan_in` runs are spilled they are merged into one, so that no more files than
/// that are open at once however long the parts are.
fn sort(parts: &[PathBuf], labels: &[String], out: &Path, spill: Spill) -> anyhow::Result<Sorted> {
    let mut header: Option<StringRecord> = None;
    let mut sends = vec![Sends::default(); labels.len()];
    let mut runs = Vec::new();
    let mut unsorted = Unsorted::default();
    for path in parts {
        let rows = requests_csv::Rows::open(path)?;
        if header.as_ref().is_some_and(|h| h != rows.columns()) {
            bail!(
                "{}: its columns differ from the other parts' (written by another llmbench version?)",
                path.display()
            );
        }
        let order = Order::new(rows.columns(), labels);
        header = Some(rows.columns().clone());
        for row in rows {
            let row = row?;
            let key = order.key(&row);
            if let Some(sends) = sends.get_mut(key.0) {
                sends.add(
                    order.number(&row, order.intended),
                    order.number(&row, order.sent),
                );
            }
            unsorted.push(key, row);
            if unsorted.bytes >= spill.run_bytes {
                let sorted = std::mem::take(&mut unsorted)
                    .sorted()
                    .map(|(_, row)| Ok(row));
                runs.push(spill_run(out, sorted)?);
                let fan_in = spill.fan_in.max(2);
                if runs.len() >= fan_in {
                    runs = merge_groups(std::mem::take(&mut runs), fan_in, &order, out)?;
                }
            }
        }
    }
    runs.push(SortedRun::Memory(unsorted.sorted()));
    Ok(Sorted {
        header: header.unwrap_or_default(),
        runs,
        sends,
    })
}

/// Where a row goes: its strategy's place among the labels, its intended time, its index.
type Key = (usize, u64, u64);

/// The columns the order reads, by a file's header.
struct Order<'a> {
    labels: &'a [String],
    strategy: Option<usize>,
    intended: Option<usize>,
    index: Option<usize>,
    sent: Option<usize>,
}

impl<'a> Order<'a> {
    fn new(header: &StringRecord, labels: &'a [String]) -> Order<'a> {
        let column = |name: &str| header.iter().position(|h| h == name);
        Order {
            labels,
            strategy: column("strategy"),
            intended: column("intended_us"),
            index: column("index"),
            sent: column("sent_us"),
        }
    }

    fn number(&self, row: &StringRecord, column: Option<usize>) -> Option<u64> {
        column.and_then(|c| row.get(c))?.parse().ok()
    }

    /// A row of no strategy of the labels goes last; a cell that is not a number, first.
    fn key(&self, row: &StringRecord) -> Key {
        let label = self.strategy.and_then(|c| row.get(c)).unwrap_or("");
        let rank = self
            .labels
            .iter()
            .position(|l| l == label)
            .unwrap_or(usize::MAX);
        let number = |c| self.number(row, c).unwrap_or(0);
        (rank, number(self.intended), number(self.index))
    }
}

/// What a strategy's send rates are measured from.
#[derive(Debug, Clone, Copy, Default)]
struct Sends {
    rows: u64,
    last_intended: Option<u64>,
    sent: u64,
    first_sent: Option<u64>,
    last_sent: Option<u64>,
}

impl Sends {
    fn add(&mut self, intended: Option<u64>, sent: Option<u64>) {
        self.rows += 1;
        self.last_intended = self.last_intended.max(intended);
        if let Some(sent) = sent {
            self.sent += 1;
            self.first_sent = Some(self.first_sent.map_or(sent, |f| f.min(sent)));
            self.last_sent = self.last_sent.max(Some(sent));
        }
    }

    fn rates(&self) -> SendRates {
        let scheduled = self
            .last_intended
            .filter(|&span| span > 0)
            .map(|span| (self.rows - 1) as f64 / (span as f64 / 1e6));
        let achieved = match (self.first_sent, self.last_sent) {
            (Some(first), Some(last)) if last > first => {
                Some((self.sent - 1) as f64 / ((last - first) as f64 / 1e6))
            }
            _ => None,
        };
        (scheduled, achieved)
    }
}

/// The rows of a run being read, with their keys.
#[derive(Default)]
struct Unsorted {
    rows: Vec<(Key, StringRecord)>,
    /// What they take in memory.
    bytes: usize,
}

impl Unsorted {
    fn push(&mut self, key: Key, row: StringRecord) {
        self.bytes += row.as_slice().len() + ROW_OVERHEAD;
        self.rows.push((key, row));
    }

    /// The rows in order; a stable sort, so rows that tie keep the order they came in.
    fn sorted(mut self) -> std::vec::IntoIter<(Key, StringRecord)> {
        self.rows.sort_by_key(|(key, _)| *key);
        self.rows.into_iter()
    }
}

/// Sorted rows: the last run, still in memory, or one spilled to a temporary file.
enum SortedRun {
    Memory(std::vec::IntoIter<(Key, StringRecord)>),
    Spilled(csv::StringRecordsIntoIter<std::fs::File>),
}

impl SortedRun {
    fn next(&mut self, order: &Order) -> Option<anyhow::Result<(Key, StringRecord)>> {
        match self {
            SortedRun::Memory(rows) => rows.next().map(Ok),
            SortedRun::Spilled(rows) => Some(
                rows.next()?
                    .map(|row| (order.key(&row), row))
                    .context("cannot read back a sorted run of requests.csv"),
            ),
        }
    }
}

/// Writes sorted rows to an anonymous temporary file in `out`, to be read back.
fn spill_run(
    out: &Path,
    rows: impl Iterator<Item = anyhow::Result<StringRecord>>,
) -> anyhow::Result<SortedRun> {
    let cannot = || {
        format!(
            "cannot spill sorted rows to a temporary file in {}",
            out.display()
        )
    };
    let file = tempfile::tempfile_in(out).with_context(cannot)?;
    let mut writer = csv::Writer::from_writer(file);
    for row in rows {
        writer.write_record(&row?).with_context(cannot)?;
    }
    let mut file = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(cannot)?;
    file.rewind().with_context(cannot)?;
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file);
    Ok(SortedRun::Spilled(reader.into_records()))
}

/// One pass: each `fan_in` consecutive runs merged into one (consecutive, so that rows
/// that tie keep their order).
fn merge_groups(
    runs: Vec<SortedRun>,
    fan_in: usize,
    order: &Order,
    out: &Path,
) -> anyhow::Result<Vec<SortedRun>> {
    let mut merged = Vec::new();
    let mut runs = runs.into_iter().peekable();
    while runs.peek().is_some() {
        let group: Vec<SortedRun> = runs.by_ref().take(fan_in).collect();
        merged.push(spill_run(out, Merged::new(group, order))?);
    }
    Ok(merged)
}

/// Sorted runs merged into one sorted stream: the least head of any run next, and of
/// heads that tie, the earlier run's.
struct Merged<'a> {
    runs: Vec<SortedRun>,
    heads: Vec<Option<StringRecord>>,
    queue: BinaryHeap<Reverse<(Key, usize)>>,
    order: &'a Order<'a>,
    /// A run that failed to read back: the next row is this error.
    failed: Option<anyhow::Error>,
}

impl<'a> Merged<'a> {
    fn new(runs: Vec<SortedRun>, order: &'a Order<'a>) -> Merged<'a> {
        let mut merged = Merged {
            heads: runs.iter().map(|_| None).collect(),
            runs,
            queue: BinaryHeap::new(),
            order,
            failed: None,
        };
        for run in 0..merged.runs.len() {
            merged.advance(run);
        }
        merged
    }

    /// Takes the next row of `run` as its head.
    fn advance(&mut self, run: usize) {
        match self.runs[run].next(self.order) {
            Some(Ok((key, row))) => {
                self.heads[run] = Some(row);
                self.queue.push(Reverse((key, run)));
            }
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = anyhow::Result<StringRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let Reverse((_, run)) = self.queue.pop()?;
        let row = self.heads[run].take().expect("a queued run has a head");
        self.advance(run);
        Some(Ok(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part's `requests.csv` in `dir`: the header, then `rows` as written.
    fn part(dir: &Path, rows: &[String]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        requests_csv::create(dir).unwrap();
        let path = dir.join(requests_csv::FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.extend(rows.iter().map(String::as_str));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A row of strategy `label` for item `index`, intended at `intended` µs and sent
    /// at `sent`, with `error` as its last text cell (to tell rows that tie apart).
    fn row(label: &str, index: &str, intended: &str, sent: &str, error: &str) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record([
            label, index, "10", "5", intended, sent, sent, "", "9", "200", "ok", "5", "usage", "5",
            "1", "0", error, "0", "",
        ])
        .unwrap();
        String::from_utf8(out.into_inner().unwrap()).unwrap()
    }

    fn labels() -> Vec<String> {
        vec!["b".into(), "a".into()]
    }

    /// Merges the parts into a new folder in `root`; returns the file and the rates.
    fn merged(root: &Path, parts: &[PathBuf], spill: Spill) -> (String, Vec<SendRates>) {
        let out = tempfile::tempdir_in(root).unwrap();
        let rates = write(parts, &labels(), out.path(), spill).unwrap();
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [requests_csv::FILE], "no temporary file is left");
        let text = std::fs::read_to_string(out.path().join(requests_csv::FILE)).unwrap();
        (text, rates)
    }

    /// The last text cell of every row of a merged file.
    fn tags(text: &str) -> Vec<String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| r.unwrap()[16].to_string())
            .collect()
    }

    const SMALL: Spill = Spill {
        run_bytes: 1,
        fan_in: 2,
    };

    #[test]
    fn rows_go_by_strategy_intended_time_and_index_and_ties_keep_the_parts_order() {
        let root = tempfile::tempdir().unwrap();
        // Part, strategy, index, intended, sent, tag: in the order the requests ended.
        let written = [
            (0, "a", "3", "3000000", "3000100", "a3"),
            (0, "b", "0", "0", "100", "b0"),
            (0, "a", "0", "0", "200", "a0"),
            (0, "b", "3", "1000000", "1000900", "b3 first"),
            (0, "stranger", "1", "0", "", "stranger"),
            (0, "b", "3", "1000000", "", "b3, \"quoted\"\nsecond"),
            (1, "b", "3", "1000000", "1000500", "b3 third"),
            (1, "a", "1", "1000000", "1000300", "a1"),
            (1, "b", "", "x", "", "b unreadable"),
            (1, "b", "1", "500000", "600", "b1"),
        ];
        let parts: Vec<PathBuf> = (0..2)
            .map(|p| {
                let mut rows: Vec<String> = written
                    .iter()
                    .filter(|w| w.0 == p)
                    .map(|&(_, label, index, intended, sent, tag)| {
                        row(label, index, intended, sent, tag)
                    })
                    .collect();
                // Cut off by a kill: left out.
                rows.push(row("a", "6", "6000000", "6000100", "cut")[..30].to_string());
                part(&root.path().join(p.to_string()), &rows)
            })
            .collect();
        let (text, rates) = merged(root.path(), &parts, Spill::DEFAULT);
        assert_eq!(
            tags(&text),
            [
                "b0",
                "b unreadable",
                "b1",
                "b3 first",
                "b3, \"quoted\"\nsecond",
                "b3 third",
                "a0",
                "a1",
                "a3",
                "stranger"
            ]
        );
        // b: 6 rows over 1 s of schedule, 4 sent from 100 to 1,000,900 µs; a: 3 rows
        // over 3 s, all sent from 200 to 3,000,100 µs.
        assert_eq!(
            rates,
            [
                (Some(5.0), Some(3.0 / 1.0008)),
                (Some(2.0 / 3.0), Some(2.0 / 2.9999))
            ]
        );
        for spill in [
            SMALL,
            Spill {
                run_bytes: 150,
                fan_in: 3,
            },
        ] {
            assert_eq!(
                merged(root.path(), &parts, spill),
                (text.clone(), rates.clone())
            );
        }
    }

    /// The rows of many runs, merged in several passes, come out as one stable sort of
    /// them all in memory would put them, byte for byte.
    #[test]
    fn a_merge_in_many_passes_writes_what_one_sort_in_memory_writes() {
        let root = tempfile::tempdir().unwrap();
        let mut draw = 7u64;
        let mut next = |n: u64| {
            draw = draw
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (draw >> 33) % n
        };
        let mut all = Vec::new();
        let parts: Vec<PathBuf> = (0..3)
            .map(|p| {
                let rows: Vec<String> = (0..200)
                    .map(|i| {
                        let label = ["a", "b", "c"][next(3) as usize];
                        let index = next(50).to_string();
                        let intended = (next(20) * 1000).to_string();
                        let sent = (next(30) * 1000).to_string();
                        row(label, &index, &intended, &sent, &format!("{p}-{i}"))
                    })
                    .collect();
                all.extend(rows.iter().cloned());
                part(&root.path().join(p.to_string()), &rows)
            })
            .collect();
        let number = |cell: &str| cell.parse::<u64>().unwrap();
        let rank = |label: &str| {
            labels()
                .iter()
                .position(|l| l == label)
                .unwrap_or(usize::MAX)
        };
        let mut rows: Vec<StringRecord> = all
            .iter()
            .map(|text| {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(text.as_bytes());
                reader.records().next().unwrap().unwrap()
            })
            .collect();
        rows.sort_by_key(|r| (rank(&r[0]), number(&r[4]), number(&r[1])));
        let mut expected = csv::Writer::from_writer(Vec::new());
        let header = requests_csv::Rows::open(&parts[0])
            .unwrap()
            .columns()
            .clone();
        expected.write_record(&header).unwrap();
        for row in &rows {
            expected.write_record(row).unwrap();
        }
        let expected = String::from_utf8(expected.into_inner().unwrap()).unwrap();
        for spill in [
            SMALL,
            Spill {
                run_bytes: 2000,
                fan_in: 3,
            },
            Spill::DEFAULT,
        ] {
            assert_eq!(merged(root.path(), &parts, spill).0, expected, "{spill:?}");
        }
    }

    #[test]
    fn a_part_with_other_columns_or_a_bad_row_is_named() {
        let root = tempfile::tempdir().unwrap();
        let good = part(&root.path().join("good"), &[row("a", "0", "0", "1", "")]);
        let older = root.path().join("older").join(requests_csv::FILE);
        std::fs::create_dir_all(older.parent().unwrap()).unwrap();
        std::fs::write(&older, "strategy,index\na,1\n").unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = write(&[good.clone(), older.clone()], &labels(), out.path(), SMALL)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: its columns differ from the other parts' (written by another llmbench version?)",
                older.display()
            )
        );
        let short = part(
            &root.path().join("short"),
            &["a,1\n".into(), row("a", "2", "0", "1", "")],
        );
        let err = write(&[good, short.clone()], &labels(), out.path(), SMALL).unwrap_err();
        assert_eq!(err.to_string(), format!("{}:2", short.display()));
    }
}
