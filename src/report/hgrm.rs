//! `<strategy>.<metric>.hgrm`: HdrHistogram's percentile-distribution text, values in
//! milliseconds, which HdrHistogram's plotter and `report` redraws read. Written only
//! for metrics that have samples (a non-streaming run has no TTFT or ITL).
//!
//! Owns the file both ways: the exporter that writes it and the reader that turns it
//! back into spectra. It imports no other format.

use super::exporter::Exporter;
use crate::metric::Metric;
use crate::result::RunResult;
use anyhow::Context;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One line of a percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumPoint {
    pub value_ms: f64,
    /// From 0 to 1.
    pub quantile: f64,
    pub total_count: u64,
}

/// Percentile steps per halving of the remaining distance to 100 %, as in the Java tool.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes a `.hgrm` file per strategy and metric with samples.
pub struct HgrmFiles;

impl Exporter for HgrmFiles {
    fn write(&self, dir: &Path, run: &RunResult) -> std::io::Result<()> {
        write(dir, run)
    }
}

fn write(dir: &Path, run: &RunResult) -> std::io::Result<()> {
    for strategy in &run.strategies {
        for metric in Metric::ALL {
            write_one(dir, &strategy.label, metric, &strategy.histogram(metric))?;
        }
    }
    Ok(())
}

/// Writes one histogram's file, if it has samples.
pub fn write_one(
    dir: &Path,
    label: &str,
    metric: Metric,
    histogram: &Histogram<u64>,
) -> std::io::Result<()> {
    if histogram.is_empty() {
        return Ok(());
    }
    super::atomic::write(
        &dir.join(file_name(label, metric)),
        percentile_distribution(histogram).as_bytes(),
    )
}

/// `<strategy>.<metric>.hgrm`.
fn file_name(label: &str, metric: Metric) -> String {
    format!("{label}.{metric}.hgrm")
}

/// Reads every `.hgrm` file of a strategy, by metric.
pub fn read_all(dir: &Path, label: &str) -> anyhow::Result<BTreeMap<Metric, Vec<SpectrumPoint>>> {
    let mut spectra = BTreeMap::new();
    for metric in Metric::ALL {
        let path = dir.join(file_name(label, metric));
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let points = parse(&text)
            .with_context(|| format!("{}: not a percentile distribution", path.display()))?;
        spectra.insert(metric, points);
    }
    Ok(spectra)
}

/// Parses the rows of a percentile distribution (header and `#[…]` footer skipped).
pub fn parse(text: &str) -> anyhow::Result<Vec<SpectrumPoint>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            anyhow::ensure!(cols.len() >= 3, "short line: {line:?}");
            Ok(SpectrumPoint {
                value_ms: cols[0].parse()?,
                quantile: cols[1].parse()?,
                total_count: cols[2].parse()?,
            })
        })
        .collect()
}

/// The text of `outputPercentileDistribution` with a microsecond → millisecond scale.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = ms(v.value_iterated_to());
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        ms(h.max()),
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_ends_at_the_max_with_the_total_count() {
        let mut h = crate::recorder::new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let text = percentile_distribution(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        let last_row = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        let cols: Vec<&str> = last_row.split_whitespace().collect();
        assert_eq!(cols[1], "1.000000000000");
        assert_eq!(cols[2], "1000");
        assert!(
            (cols[0].parse::<f64>().unwrap() - 1000.0).abs() < 1.0,
            "{last_row}"
        );
        assert!(text.contains("Total count    =         1000]"));
        let points = parse(&text).unwrap();
        assert_eq!(points.last().unwrap().total_count, 1000);
        assert_eq!(points.last().unwrap().quantile, 1.0);
        assert!(points.windows(2).all(|w| w[0].quantile <= w[1].quantile));
    }
}
