//! `<strategy>.<metric>.hgrm`: HdrHistogram's percentile-distribution text, values in
//! milliseconds, which HdrHistogram's plotter and `report` redraws read. Written only
//! for metrics that have samples (a non-streaming run has no TTFT or ITL).

use crate::result::{Metric, RunResult};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::Path;

/// Percentile steps per halving of the remaining distance to 100 %, as in the Java tool.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

pub fn write(dir: &Path, run: &RunResult) -> std::io::Result<()> {
    for strategy in &run.strategies {
        for metric in Metric::ALL {
            let histogram = strategy.histogram(metric);
            if histogram.is_empty() {
                continue;
            }
            let name = format!("{}.{}.hgrm", strategy.label, metric.key());
            std::fs::write(dir.join(name), percentile_distribution(&histogram))?;
        }
    }
    Ok(())
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
    }
}
