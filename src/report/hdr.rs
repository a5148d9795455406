//! `<strategy>.<metric>.hdr`: each latency histogram in HdrHistogram's standard
//! serialized form (V2 with DEFLATE, the form the Java, Go and Rust libraries all read),
//! values in microseconds. Unlike the `.hgrm` text, it keeps every bucket, so the
//! histograms of the parts of a sharded run add up exactly (`llmbench merge`).
//!
//! Owns the file both ways: the exporter that writes it and the reader. It imports no
//! other format.

use super::exporter::Exporter;
use crate::metric::Metric;
use crate::result::RunResult;
use anyhow::Context;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use std::path::Path;

/// Writes a `.hdr` file per strategy and metric with samples.
pub struct HdrFiles;

impl Exporter for HdrFiles {
    fn write(&self, dir: &Path, run: &RunResult) -> std::io::Result<()> {
        for strategy in &run.strategies {
            for metric in Metric::ALL {
                write(dir, &strategy.label, metric, &strategy.histogram(metric))?;
            }
        }
        Ok(())
    }
}

/// Writes one histogram, if it has samples.
pub fn write(dir: &Path, label: &str, metric: Metric, h: &Histogram<u64>) -> std::io::Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    super::atomic::write(&dir.join(file_name(label, metric)), &bytes)
}

/// `<strategy>.<metric>.hdr`.
pub fn file_name(label: &str, metric: Metric) -> String {
    format!("{label}.{metric}.hdr")
}

/// Reads strategy `label`'s histogram of `metric` from `dir`; `None` when it has no
/// file (no samples).
pub fn read(dir: &Path, label: &str, metric: Metric) -> anyhow::Result<Option<Histogram<u64>>> {
    let path = dir.join(file_name(label, metric));
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        read => read.with_context(|| format!("cannot read {}", path.display()))?,
    };
    let histogram = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("{}: not a serialized HdrHistogram", path.display()))?;
    Ok(Some(histogram))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_reads_back_whole_and_adds_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = crate::recorder::new_histogram();
        let mut b = crate::recorder::new_histogram();
        for us in 1..=5000u64 {
            a.record(us * 37).unwrap();
            b.record(us * 11 + 7).unwrap();
        }
        write(dir.path(), "s", Metric::E2e, &a).unwrap();
        write(dir.path(), "t", Metric::E2e, &b).unwrap();
        write(
            dir.path(),
            "s",
            Metric::Ttft,
            &crate::recorder::new_histogram(),
        )
        .unwrap();
        let mut sum = read(dir.path(), "s", Metric::E2e).unwrap().unwrap();
        assert_eq!(sum, a);
        sum.add(read(dir.path(), "t", Metric::E2e).unwrap().unwrap())
            .unwrap();
        let mut both = a.clone();
        both.add(&b).unwrap();
        assert_eq!(sum, both);
        assert!(
            read(dir.path(), "s", Metric::Ttft).unwrap().is_none(),
            "no samples, no file"
        );
        std::fs::write(dir.path().join("u.e2e.hdr"), b"nonsense").unwrap();
        let err = read(dir.path(), "u", Metric::E2e).unwrap_err();
        assert!(format!("{err:#}").contains("u.e2e.hdr"), "{err:#}");
    }
}
