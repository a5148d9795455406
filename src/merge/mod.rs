//! `llmbench merge`: the results folders of the parts of a sharded run (`run --shard
//! I/N`) made into one results folder, as if one machine had sent it all.
//!
//! Exact, with no coordinator: the parts drew the same schedule from the seed and
//! anchored it at one common start, so their times share one timeline; counters add,
//! and the latency histograms, read from their serialized `.hdr` form, add bucket by
//! bucket (HdrHistograms with the same bounds and precision sum exactly). Before
//! anything is written the parts are checked: one scenario (the same hash), each index
//! once, none missing unless allowed, the same start within the skew tolerance.
//!
//! `rows` writes the merged `requests.csv`, sorted in bounded memory.
//!
//! Reads only saved folders and writes a normal one ([`crate::report`] draws its charts),
//! so it sits beside `compare`, above the report side.

mod rows;

use crate::metric::Metric;
use crate::recorder::timeline::LimitSeries;
use crate::report::{atomic, hdr, hgrm, requests_csv, saved};
use crate::shard::{MergeRecord, ShardPart, ShardRecord, ShardSent, StartRecord};
use crate::summary::{self, CopyShare, Percentiles, RequestCounts, StrategySummary, Summary};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The start skew a merge accepts unless told otherwise, in ms.
pub const DEFAULT_MAX_SKEW_MS: f64 = 50.0;

pub struct MergeOptions {
    /// The parts' results folders.
    pub parts: Vec<PathBuf>,
    /// The merged results folder to create (new, or empty).
    pub output: PathBuf,
    /// Merge even when parts are missing; the result says it is incomplete.
    pub allow_partial: bool,
    /// The most the parts' starts may spread, in ms.
    pub max_skew_ms: f64,
}

/// What a merge wrote.
pub struct MergeOutcome {
    pub summary: Summary,
    /// Why the merged run is incomplete, if it is (missing parts, incomplete parts).
    pub incomplete: Option<summary::Incompleteness>,
}

/// One part as read from its folder.
struct Part {
    dir: PathBuf,
    summary: Summary,
    shard: ShardRecord,
    start: StartRecord,
    incomplete: Option<summary::Incompleteness>,
}

impl Part {
    fn load(dir: &Path) -> anyhow::Result<Part> {
        let summary = Summary::load(dir)?;
        let Some(shard) = summary.shard.clone() else {
            bail!(
                "{}: not a part of a sharded run (its summary has no `shard`): merge the folders written by `llmbench run --shard I/N`",
                dir.display()
            );
        };
        let Some(start) = summary.start.clone() else {
            bail!(
                "{}: shard {} ran without --start-at: the parts of a run must share one common start to merge",
                dir.display(),
                shard.index
            );
        };
        Ok(Part {
            dir: dir.to_path_buf(),
            incomplete: summary::incompleteness(dir, &summary),
            summary,
            shard,
            start,
        })
    }

    fn labels(&self) -> Vec<&str> {
        self.summary
            .strategies
            .iter()
            .map(|s| s.label.as_str())
            .collect()
    }
}

/// Checks the parts against each other and writes the merged folder.
pub fn merge(options: &MergeOptions) -> anyhow::Result<MergeOutcome> {
    let mut parts = part_dirs(&options.parts)?
        .iter()
        .map(|dir| Part::load(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Some(first) = parts.first() else {
        bail!("no results folder to merge");
    };
    let count = first.shard.count;
    let missing = check_parts(&parts, options)?;
    let skew_ms = check_start(&parts, options.max_skew_ms)?;
    parts.sort_by_key(|p| p.shard.index);
    let mut strategies = parts[0]
        .summary
        .strategies
        .iter()
        .map(|s| merge_strategy(&parts, &s.label))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let out = create_output(&options.output)?;
    let scenario = crate::summary::read_results_file(&parts[0].dir, saved::SCENARIO_COPY)?;
    atomic::write(&out.join(saved::SCENARIO_COPY), scenario.as_bytes())?;
    let files: Vec<PathBuf> = parts
        .iter()
        .map(|p| p.dir.join(requests_csv::FILE))
        .collect();
    let labels: Vec<String> = strategies.iter().map(|s| s.summary.label.clone()).collect();
    let rates = rows::write(&files, &labels, &out, rows::Spill::DEFAULT)?;
    for (merged, rates) in strategies.iter_mut().zip(rates) {
        let s = &mut merged.summary;
        (s.scheduled_rate_per_s, s.achieved_send_rate_per_s) = rates;
    }
    let mut summaries = Vec::new();
    for merged in strategies {
        for (metric, histogram) in &merged.histograms {
            hgrm::write_one(&out, &merged.summary.label, *metric, histogram)?;
            hdr::write(&out, &merged.summary.label, *metric, histogram)?;
        }
        summaries.push(merged.summary);
    }
    let summary = merged_summary(&parts, summaries, count, missing, skew_ms, options);
    let json = serde_json::to_vec_pretty(&summary)?;
    atomic::write(&out.join(summary::FILE), &json)?;
    Ok(MergeOutcome {
        incomplete: summary::incompleteness(&out, &summary),
        summary,
    })
}

/// The parts' folders: each folder given that holds a summary, and for one that does
/// not, the folders in it that do (so the parts may all write into one folder on a
/// shared volume, `run -o`, and be merged by naming it).
fn part_dirs(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for dir in given {
        if dir.join(summary::FILE).exists() || dir.join(summary::RUNNING).exists() {
            dirs.push(dir.clone());
            continue;
        }
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}: is it a results folder?", dir.display()))?;
        let mut inner: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.join(summary::FILE).exists() || p.join(summary::RUNNING).exists())
            .collect();
        if inner.is_empty() {
            bail!(
                "{} is not a results folder and holds none: give the parts' results folders, or the folder they were written into",
                dir.display()
            );
        }
        inner.sort();
        dirs.append(&mut inner);
    }
    Ok(dirs)
}

/// Refuses parts of different runs, a part given twice, and (unless allowed) missing
/// parts; returns the indices of the missing ones.
fn check_parts(parts: &[Part], options: &MergeOptions) -> anyhow::Result<Vec<u32>> {
    let first = &parts[0];
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for part in parts {
        if part.shard.scenario_hash != first.shard.scenario_hash
            || part.shard.count != first.shard.count
        {
            bail!(
                "{} and {} are parts of different runs (scenario hash {} of {} parts, against {} of {}): merge only the parts of one run of one scenario",
                first.dir.display(),
                part.dir.display(),
                first.shard.scenario_hash,
                first.shard.count,
                part.shard.scenario_hash,
                part.shard.count
            );
        }
        if part.labels() != first.labels() {
            bail!(
                "{} ran strategies {:?} but {} ran {:?}: every part must run the same strategy",
                first.dir.display(),
                first.labels(),
                part.dir.display(),
                part.labels()
            );
        }
        if let Some(other) = seen.insert(part.shard.index, &part.dir) {
            bail!(
                "shard {} of {} is given twice ({} and {}): the parts overlap",
                part.shard.index,
                part.shard.count,
                other.display(),
                part.dir.display()
            );
        }
    }
    let missing: Vec<u32> = (0..first.shard.count)
        .filter(|i| !seen.contains_key(i))
        .collect();
    if !missing.is_empty() && !options.allow_partial {
        bail!(
            "shards {} of {} are missing: merge every part, or pass --allow-partial to merge what there is (the result is then marked incomplete)",
            list(&missing),
            first.shard.count
        );
    }
    Ok(missing)
}

/// Refuses parts with different common starts, or whose starts spread more than
/// `max_skew_ms`; returns the spread.
fn check_start(parts: &[Part], max_skew_ms: f64) -> anyhow::Result<f64> {
    let first = &parts[0];
    if let Some(other) = parts
        .iter()
        .find(|p| p.start.start_at != first.start.start_at)
    {
        bail!(
            "{} started at {} but {} at {}: the parts of a run share one --start-at",
            first.dir.display(),
            first.start.start_at,
            other.dir.display(),
            other.start.start_at
        );
    }
    let lateness = parts.iter().map(|p| p.start.lateness_ms);
    let latest = lateness.clone().fold(f64::MIN, f64::max);
    let earliest = lateness.fold(f64::MAX, f64::min);
    let skew = latest - earliest;
    if skew > max_skew_ms {
        let late = parts
            .iter()
            .map(|p| format!("shard {} {:.1} ms", p.shard.index, p.start.lateness_ms))
            .collect::<Vec<_>>();
        bail!(
            "the parts started {skew:.1} ms apart, more than the {max_skew_ms} ms allowed (late by: {}): rerun with a --start-at further ahead, or allow more with --max-skew-ms",
            late.join(", ")
        );
    }
    Ok(skew)
}

/// `1, 2` for the indices given.
fn list(indices: &[u32]) -> String {
    indices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The merged folder: created, or an existing empty one; never one with results in it.
fn create_output(out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let taken = std::fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .next()
        .is_some();
    if taken {
        bail!(
            "{} is not empty: give a new folder for the merged results",
            out.display()
        );
    }
    Ok(out.to_path_buf())
}

/// One merged strategy: its summary and its histograms.
struct MergedStrategy {
    summary: StrategySummary,
    histograms: BTreeMap<Metric, Histogram<u64>>,
}

/// Adds up strategy `label` over the parts.
fn merge_strategy(parts: &[Part], label: &str) -> anyhow::Result<MergedStrategy> {
    let of: Vec<&StrategySummary> = parts
        .iter()
        .filter_map(|p| p.summary.strategies.iter().find(|s| s.label == label))
        .collect();
    let mut histograms: BTreeMap<Metric, Histogram<u64>> = BTreeMap::new();
    for (part, s) in parts.iter().zip(&of) {
        for metric in Metric::ALL {
            let saved = s.latency(metric).map_or(0, |p| p.count);
            let read = hdr::read(&part.dir, label, metric)?;
            let found = read.as_ref().map_or(0, Histogram::len);
            if found != saved {
                bail!(
                    "{}: {} holds {found} samples but the summary says {saved}: the histograms cannot be added exactly (was the folder written by an older llmbench, without .hdr files?)",
                    part.dir.display(),
                    hdr::file_name(label, metric)
                );
            }
            if let Some(h) = read {
                match histograms.get_mut(&metric) {
                    Some(sum) => sum
                        .add(&h)
                        .map_err(|e| anyhow::anyhow!("{e:?}"))
                        .with_context(|| format!("cannot add {label}'s {metric} histograms"))?,
                    None => {
                        histograms.insert(metric, h);
                    }
                }
            }
        }
    }
    let first = of[0];
    let makespan_s = of.iter().map(|s| s.makespan_s).fold(0.0, f64::max);
    let mut requests = RequestCounts::default();
    for s in &of {
        requests += &s.requests;
    }
    let output_tokens = of.iter().map(|s| s.output_tokens).sum();
    let latency_ms = histograms
        .iter()
        .filter_map(|(m, h)| Some((m.name().to_string(), Percentiles::from_histogram(h)?)))
        .collect();
    let summary = StrategySummary {
        label: first.label.clone(),
        kind: first.kind.clone(),
        limit: of.iter().map(|s| s.limit).sum(),
        runtime: first.runtime.clone(),
        client: first.client.clone(),
        http_version: http_versions(&of),
        client_cpu_s: of
            .iter()
            .filter_map(|s| s.client_cpu_s)
            .reduce(|a, b| a + b),
        // Only beside the client CPU time it is a share of.
        probe_cpu_s: of
            .iter()
            .filter(|s| s.client_cpu_s.is_some())
            .filter_map(|s| s.probe_cpu_s)
            .reduce(|a, b| a + b),
        client_health: worst_health(parts, &of),
        interrupted: of.iter().any(|s| s.interrupted),
        makespan_s,
        // From the merged requests.csv, which holds every part's times.
        scheduled_rate_per_s: None,
        achieved_send_rate_per_s: None,
        requests_per_s: per_second(requests.ok, makespan_s),
        output_tokens,
        output_tokens_per_s: per_second(output_tokens, makespan_s),
        requests,
        latency_ms,
        mock: of.iter().filter_map(|s| s.mock).reduce(|mut sum, part| {
            sum += part;
            sum
        }),
        limit_series: add_limit_series(&of),
        copies: add_copies(&of, makespan_s),
        prompt_cache: of
            .iter()
            .filter_map(|s| s.prompt_cache)
            .reduce(|a, b| a + b),
        // A program's report is one process's: the parts' are not added.
        program: None,
    };
    Ok(MergedStrategy {
        summary,
        histograms,
    })
}

fn per_second(count: u64, span_s: f64) -> f64 {
    let span = std::time::Duration::try_from_secs_f64(span_s).unwrap_or_default();
    crate::result::per_second(count as f64, span)
}

/// Every HTTP version any part saw, in order of first appearance.
fn http_versions(of: &[&StrategySummary]) -> String {
    let mut versions: Vec<&str> = Vec::new();
    for v in of.iter().flat_map(|s| s.http_version.split(" + ")) {
        if !v.is_empty() && !versions.contains(&v) {
            versions.push(v);
        }
    }
    versions.join(" + ")
}

/// The health of the part whose client fared worst (a client-bound part first, then
/// the highest lag p99), its reason naming the part: lag percentiles do not add, and
/// one client-bound part is enough to doubt the merged latencies.
fn worst_health(parts: &[Part], of: &[&StrategySummary]) -> Option<summary::ClientHealth> {
    let lag_p99 = |h: &summary::ClientHealth| h.lag_ms.as_ref().map_or(0.0, |l| l.p99);
    let (part, health) = parts
        .iter()
        .zip(of)
        .filter_map(|(p, s)| Some((p, s.client_health.as_ref()?)))
        .max_by(|(_, a), (_, b)| {
            (a.client_bound, lag_p99(a))
                .partial_cmp(&(b.client_bound, lag_p99(b)))
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    let mut health = health.clone();
    health.reason = health
        .reason
        .map(|r| format!("shard {}: {r}", part.shard.index));
    Some(health)
}

/// With `copies`, each copy's share added over the parts (copy `k` of every part).
fn add_copies(of: &[&StrategySummary], makespan_s: f64) -> Vec<CopyShare> {
    let mut sum = of[0].copies.clone();
    for s in &of[1..] {
        if s.copies.len() != sum.len() {
            return Vec::new();
        }
        for (total, share) in sum.iter_mut().zip(&s.copies) {
            *total += share;
        }
    }
    for share in &mut sum {
        share.requests_per_s = per_second(share.ok, makespan_s);
    }
    sum
}

/// The parts' limits over time added up: at each change of any part, the sum of the
/// values each part had in effect.
fn add_limit_series(of: &[&StrategySummary]) -> Option<LimitSeries> {
    let series: Vec<&LimitSeries> = of.iter().filter_map(|s| s.limit_series.as_ref()).collect();
    let unit = series.first()?.unit;
    let mut changes: Vec<(f64, usize, f64)> = series
        .iter()
        .enumerate()
        .flat_map(|(part, s)| s.points.iter().map(move |&(t, v)| (t, part, v)))
        .collect();
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut current = vec![0.0; series.len()];
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (t, part, value) in changes {
        current[part] = value;
        let sum = current.iter().sum();
        match points.last_mut() {
            Some(last) if last.0 == t => last.1 = sum,
            _ => points.push((t, sum)),
        }
    }
    Some(LimitSeries { unit, points })
}

/// The merged run's summary: the first part's facts, the strategies added up, and what
/// was merged from where.
fn merged_summary(
    parts: &[Part],
    strategies: Vec<StrategySummary>,
    count: u32,
    missing: Vec<u32>,
    start_skew_ms: f64,
    options: &MergeOptions,
) -> Summary {
    let first = &parts[0].summary;
    let shard_parts = parts
        .iter()
        .map(|p| ShardPart {
            index: p.shard.index,
            source: p.dir.display().to_string(),
            machine: format!(
                "{} ({} cores)",
                p.summary.machine.cpu_model, p.summary.machine.cores
            ),
            start: p.start.clone(),
            strategies: p
                .summary
                .strategies
                .iter()
                .map(|s| ShardSent {
                    label: s.label.clone(),
                    requests: s.requests.total,
                    ok: s.requests.ok,
                    rate_limited: s.requests.rate_limited,
                    send_rate_per_s: s.achieved_send_rate_per_s,
                })
                .collect(),
        })
        .collect();
    let incomplete_part = parts.iter().any(|p| p.incomplete.is_some());
    let mut missing_strategies: Vec<String> = Vec::new();
    for p in parts {
        for label in &p.summary.missing_strategies {
            if !missing_strategies.contains(label) {
                missing_strategies.push(label.clone());
            }
        }
    }
    if !missing.is_empty() {
        // Every strategy lacks the missing parts' share of its work.
        for s in &strategies {
            if !missing_strategies.contains(&s.label) {
                missing_strategies.push(s.label.clone());
            }
        }
    }
    Summary {
        scenario: first.scenario.clone(),
        description: first.description.clone(),
        scenario_file: first.scenario_file.clone(),
        workload_seed: first.workload_seed,
        mock_seed: first.mock_seed,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: first.machine.clone(),
        started_at: parts[0].start.start_at.clone(),
        interrupted: parts.iter().any(|p| p.summary.interrupted),
        complete: missing.is_empty() && !incomplete_part,
        missing_strategies,
        stopped: parts.iter().find_map(|p| p.summary.stopped.clone()),
        strategies,
        skipped: first.skipped.clone(),
        capacity: None,
        shard: None,
        start: None,
        merged: Some(MergeRecord {
            count,
            parts: shard_parts,
            missing,
            start_skew_ms,
            max_skew_ms: options.max_skew_ms,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::timeline::LimitUnit;

    fn with_series(points: &[(f64, f64)], http: &str) -> StrategySummary {
        let json = serde_json::json!({
            "label": "a", "kind": "adaptive", "limit": 4, "interrupted": false,
            "requests": {"total": 0, "ok": 0, "failed": 0, "rate_limited": 0,
                         "cancelled": 0, "errors": {}},
            "makespan_s": 1.0, "scheduled_rate_per_s": null,
            "achieved_send_rate_per_s": null, "requests_per_s": 0.0,
            "output_tokens": 0, "output_tokens_per_s": 0.0, "latency_ms": {},
            "mock": null, "http_version": http,
        });
        let mut s: StrategySummary = serde_json::from_value(json).unwrap();
        s.limit_series = Some(LimitSeries {
            unit: LimitUnit::InFlight,
            points: points.to_vec(),
        });
        s
    }

    #[test]
    fn limits_add_at_every_change_and_versions_join_once() {
        let a = with_series(&[(0.0, 1.0), (1.0, 2.0), (3.0, 4.0)], "HTTP/1.1");
        let b = with_series(&[(0.0, 1.0), (2.0, 8.0)], "HTTP/1.1 + HTTP/2");
        let sum = add_limit_series(&[&a, &b]).unwrap();
        assert_eq!(
            sum.points,
            [(0.0, 2.0), (1.0, 3.0), (2.0, 10.0), (3.0, 12.0)]
        );
        assert_eq!(http_versions(&[&a, &b]), "HTTP/1.1 + HTTP/2");
        let limits: Option<u64> = [&a, &b].iter().map(|s| s.limit).sum();
        assert_eq!(limits, Some(8));
    }
}
