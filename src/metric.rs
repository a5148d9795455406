//! The latency metrics a run measures, and their names: the one place a metric is
//! named, for `summary.json` keys, `.hgrm` file names, tables, charts, SLOs and
//! comparisons alike. Adding a metric is a variant here plus how the run's result
//! derives its histogram (`StrategyResult::histogram`, above this module).
//!
//! A leaf: it imports nothing from the crate.

use std::fmt;
use std::str::FromStr;

/// The latency metrics kept as histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Sent → last byte (uncorrected).
    E2e,
    /// Intended start → last byte: includes the wait in the client (corrected for
    /// coordinated omission).
    E2eCorrected,
    Ttft,
    TtftCorrected,
    Itl,
    Tpot,
    /// Intended start → sent: how late the client sent.
    DispatchDelay,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::E2e,
        Metric::E2eCorrected,
        Metric::Ttft,
        Metric::TtftCorrected,
        Metric::Itl,
        Metric::Tpot,
        Metric::DispatchDelay,
    ];

    /// Short name, used in file names and JSON keys: part of the saved format.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::E2e => "e2e",
            Metric::E2eCorrected => "e2e_corrected",
            Metric::Ttft => "ttft",
            Metric::TtftCorrected => "ttft_corrected",
            Metric::Itl => "itl",
            Metric::Tpot => "tpot",
            Metric::DispatchDelay => "dispatch_delay",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no metric's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {0:?}")]
pub struct UnknownMetric(pub String);

impl FromStr for Metric {
    type Err = UnknownMetric;

    fn from_str(s: &str) -> Result<Metric, UnknownMetric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::Metric;

    #[test]
    fn names_are_the_saved_keys_and_read_back() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "e2e",
                "e2e_corrected",
                "ttft",
                "ttft_corrected",
                "itl",
                "tpot",
                "dispatch_delay"
            ]
        );
        for m in Metric::ALL {
            assert_eq!(m.to_string().parse::<Metric>(), Ok(m));
        }
        assert!("p99".parse::<Metric>().is_err());
    }
}
