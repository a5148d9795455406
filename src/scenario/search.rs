//! `[search]`: what `llmbench capacity` searches for: the highest load (an arrival rate,
//! or a strategy's in-flight limit) at which the scenario's one strategy still meets
//! `[slo]`. The search itself is the search stage's; the replica count it reports for a
//! target rate is planned from `target_rate` and `headroom`.

use super::values::{Concurrency, Headroom, Positive, Precision, Rate, RequestCount, Seconds};
use serde::{Deserialize, Serialize};

/// What a capacity search varies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchDimension {
    /// The open-loop arrival rate (requests per second).
    #[default]
    Rate,
    /// The strategy's in-flight `limit`.
    Concurrency,
}

impl SearchDimension {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchDimension::Rate => "rate",
            SearchDimension::Concurrency => "concurrency",
        }
    }

    /// The unit of a point on it, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            SearchDimension::Rate => "req/s",
            SearchDimension::Concurrency => "in flight",
        }
    }
}

/// The `[search]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    #[serde(default)]
    pub dimension: SearchDimension,
    /// The first (lowest) point probed: a rate, or a limit.
    pub low: Positive,
    /// The highest point probed.
    pub high: Positive,
    /// Requests per probe (rate: at most; concurrency: the batch each probe sends).
    pub requests: Option<RequestCount>,
    /// Seconds of arrivals per probe (rate only).
    pub duration_s: Option<Seconds>,
    /// Most runs of one point: a point whose verdict is near the boundary (its worst
    /// objective within [`NEAR_BOUNDARY`] of its limit) is run again, up to this many
    /// times, and decided by the median.
    #[serde(default = "default_repeats")]
    pub repeats: Concurrency,
    /// The search stops once the lowest failing point is within this share above the
    /// highest passing one (0.05: 5 %).
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// A rate (req/s) to plan replicas for, at the boundary found.
    pub target_rate: Option<Rate>,
    /// The share of its boundary each replica is planned to carry (default 0.8: 20 %
    /// spare).
    #[serde(default = "default_headroom")]
    pub headroom: Headroom,
}

/// A probe whose worst objective is within this share of its limit (either side) is
/// near the boundary, and repeated before it decides.
pub const NEAR_BOUNDARY: f64 = 0.1;

fn default_repeats() -> Concurrency {
    Concurrency(2)
}

fn default_precision() -> Precision {
    Precision(0.05)
}

fn default_headroom() -> Headroom {
    Headroom(0.8)
}

/// The most runs of one point a search may ask for: repeats beyond a few only spend.
const MAX_REPEATS: u64 = 10;

impl SearchConfig {
    /// Checks that involve several keys; the message names the key at fault.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.low.0 >= self.high.0 {
            return Err(format!(
                "`low` ({}) must be below `high` ({})",
                self.low.0, self.high.0
            ));
        }
        let whole = |v: Positive| v.0.fract() == 0.0;
        if self.dimension == SearchDimension::Concurrency && !(whole(self.low) && whole(self.high))
        {
            return Err(format!(
                "`low` ({}) and `high` ({}) of a concurrency search are numbers of requests in flight: give whole numbers",
                self.low.0, self.high.0
            ));
        }
        if self.dimension == SearchDimension::Rate && self.low.0 < super::limits::MIN_RATE {
            return Err(format!(
                "`low` must be at least {} requests per second, got {}",
                super::limits::MIN_RATE,
                self.low.0
            ));
        }
        if self.repeats.0 > MAX_REPEATS {
            return Err(format!(
                "`repeats` must be from 1 to {MAX_REPEATS}, got {}",
                self.repeats.0
            ));
        }
        match (self.dimension, self.requests, self.duration_s) {
            (SearchDimension::Rate, None, None) => Err(
                "a rate probe needs a bound: `requests`, `duration_s`, or both (whichever comes first ends it)".into(),
            ),
            (SearchDimension::Concurrency, None, _) => Err(
                "a concurrency probe sends a batch: set `requests` (e.g. 8 times `high`)".into(),
            ),
            (SearchDimension::Concurrency, _, Some(_)) => Err(
                "`duration_s` applies to rate probes only; a concurrency probe sends `requests`: remove it".into(),
            ),
            (SearchDimension::Concurrency, _, _) if self.high.0 > super::limits::MAX_IN_FLIGHT as f64 => Err(format!(
                "`high` must be at most {} requests in flight", super::limits::MAX_IN_FLIGHT
            )),
            (SearchDimension::Rate, _, _) if self.high.0 > super::limits::MAX_RATE => Err(format!(
                "`high` must be at most {} requests per second", super::limits::MAX_RATE
            )),
            _ => Ok(()),
        }
    }

    /// Requests one probe at `point` offers: `requests`, or what `duration_s` of
    /// arrivals at the rate brings, whichever is fewer.
    pub fn requests_at(&self, point: f64) -> u64 {
        let by_count = self.requests.map_or(u64::MAX, |r| r.0);
        let by_time = match (self.dimension, self.duration_s) {
            (SearchDimension::Rate, Some(d)) => (point * d.0).ceil().max(1.0) as u64,
            _ => u64::MAX,
        };
        by_count.min(by_time)
    }
}
