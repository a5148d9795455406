//! The capacity search of `llmbench capacity`, as pure decisions over probe verdicts:
//! which point to probe next, when a point is decided, and the answer. It brackets the
//! boundary exponentially (doubling from `low`), then narrows it by interpolating the
//! zero of a monotone fit of the worst SLO margin, or by bisection where the margins
//! are too far from their limits to interpolate (past saturation they explode), until
//! the lowest failing point is within `precision` of the highest passing one. A point
//! whose worst margin lies within [`NEAR_BOUNDARY`] of zero is run again (up to
//! `repeats` times) and decided by the median, so one noisy probe does not steer it.
//!
//! Runs nothing and measures nothing: the capacity stage runs the probes and hands each
//! verdict here. Imports only the scenario; the answer is saved in `summary.json`.

use crate::scenario::{NEAR_BOUNDARY, SearchConfig, SearchDimension};
use serde::{Deserialize, Serialize};

/// How far one objective was from its limit in a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveMargin {
    pub objective: String,
    pub limit: f64,
    /// `None` when the probe had no sample for it: a failure.
    pub actual: Option<f64>,
    /// Relative headroom: (limit − actual) / limit for a ceiling, (actual − limit) /
    /// limit for a floor; ≥ 0 passes; −1 without a sample.
    pub margin: f64,
}

/// One run of one point: a strategy run of the results folder, labelled `label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeVerdict {
    pub label: String,
    pub point: f64,
    pub objectives: Vec<ObjectiveMargin>,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Requests per second whose own TTFT, ITL and E2E met the objectives.
    pub goodput_rps: f64,
    /// Stopped before it finished (Ctrl-C, the budget): shown, never decides.
    #[serde(default)]
    pub interrupted: bool,
}

impl ProbeVerdict {
    /// The smallest margin: the objective closest to (or furthest past) its limit.
    pub fn worst_margin(&self) -> f64 {
        self.objectives
            .iter()
            .map(|o| o.margin)
            .fold(f64::INFINITY, f64::min)
    }

    pub fn passed(&self) -> bool {
        self.worst_margin() >= 0.0
    }

    /// "pass", "fail", or "interrupted" (which decides nothing).
    pub fn outcome(&self) -> &'static str {
        match (self.interrupted, self.passed()) {
            (true, _) => "interrupted",
            (false, true) => "pass",
            (false, false) => "fail",
        }
    }
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchStatus {
    /// Bracketed to the stated precision.
    Found,
    /// Even `low` fails.
    LowestFails,
    /// Even `high` passes: the boundary is above it.
    HighestPasses,
    /// The most points the plan allows were probed without reaching the precision.
    PointsSpent,
    /// Stopped early (Ctrl-C, a signal, the budget): the answer covers the probes run.
    Partial { reason: String },
}

/// Replicas of the endpoint for a target rate at the boundary found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replicas {
    pub target_rps: f64,
    /// The share of its boundary each replica is planned to carry.
    pub headroom: f64,
    /// What one replica sustains at the boundary (req/s).
    pub per_replica_rps: f64,
    pub count: u64,
}

/// The search's answer, as `summary.json` saves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityAnswer {
    /// `rate` or `concurrency`.
    pub dimension: String,
    /// `req/s` or `in flight`.
    pub unit: String,
    pub precision: f64,
    pub status: SearchStatus,
    pub highest_passing: Option<f64>,
    pub lowest_failing: Option<f64>,
    /// The objective that breaks first at the lowest failing point.
    pub binding_objective: Option<String>,
    /// Goodput at the highest passing point (the median of its runs).
    pub goodput_rps: Option<f64>,
    pub replicas: Option<Replicas>,
    /// Distinct points probed.
    pub points: usize,
    /// Every probe, in the order run.
    pub probes: Vec<ProbeVerdict>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchStep {
    Probe(f64),
    Done(SearchStatus),
}

/// A point with its runs so far.
struct Point {
    value: f64,
    /// The median of its runs' worst margins.
    margin: f64,
    runs: usize,
}

impl Point {
    fn passed(&self) -> bool {
        self.margin >= 0.0
    }
}

/// The search's state: its configuration and the verdicts so far (state derived from
/// them, never kept twice).
pub struct Search {
    config: SearchConfig,
    probes: Vec<ProbeVerdict>,
}

/// Interpolation places a point no closer to either end than this share of the bracket.
const INTERPOLATION_CLAMP: f64 = 0.3;

impl Search {
    pub fn new(config: SearchConfig) -> Search {
        Search {
            config,
            probes: Vec::new(),
        }
    }

    /// Records a probe's verdict (an interrupted one is kept for the record only).
    pub fn record(&mut self, verdict: ProbeVerdict) {
        self.probes.push(verdict);
    }

    pub fn probes(&self) -> &[ProbeVerdict] {
        &self.probes
    }

    /// The most distinct points a search may probe: the doublings from `low` to
    /// `high`, and the narrowing steps that reach `precision` when every step keeps
    /// the larger share of the bracket that interpolation may keep.
    pub fn max_points(config: &SearchConfig) -> usize {
        let bracket = (config.high.0 / config.low.0).log2().ceil() as usize + 1;
        let steps = (2f64.ln() / (1.0 + config.precision.0).ln()).ln()
            / (1.0 / (1.0 - INTERPOLATION_CLAMP)).ln();
        bracket + steps.ceil().max(0.0) as usize + 1
    }

    /// The most probes (runs) a search may run.
    pub fn max_probes(config: &SearchConfig) -> usize {
        Search::max_points(config) * config.repeats.get()
    }

    /// A point on the searched dimension: limits are whole.
    fn snap(&self, x: f64) -> f64 {
        match self.config.dimension {
            SearchDimension::Rate => x,
            SearchDimension::Concurrency => x.round().max(1.0),
        }
    }

    /// The decided verdict of every point, in increasing order.
    fn points(&self) -> Vec<Point> {
        let mut values: Vec<f64> = self.finished().map(|p| p.point).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        values
            .into_iter()
            .map(|value| {
                let mut margins: Vec<f64> = self
                    .finished()
                    .filter(|p| p.point == value)
                    .map(ProbeVerdict::worst_margin)
                    .collect();
                margins.sort_by(f64::total_cmp);
                Point {
                    value,
                    margin: median(&margins),
                    runs: margins.len(),
                }
            })
            .collect()
    }

    fn finished(&self) -> impl Iterator<Item = &ProbeVerdict> {
        self.probes.iter().filter(|p| !p.interrupted)
    }

    /// The next point to probe, or how the search ended.
    pub fn next(&self) -> SearchStep {
        let points = self.points();
        // A point near the boundary is run again before it decides anything.
        if let Some(last) = self.finished().last()
            && let Some(point) = points.iter().find(|p| p.value == last.point)
            && point.margin.abs() < NEAR_BOUNDARY
            && point.runs < self.config.repeats.get()
        {
            return SearchStep::Probe(point.value);
        }
        let low = self.snap(self.config.low.0);
        let high = self.snap(self.config.high.0);
        let Some(passing) = points.iter().rfind(|p| p.passed()) else {
            return match points.is_empty() {
                true => SearchStep::Probe(low),
                false => SearchStep::Done(SearchStatus::LowestFails),
            };
        };
        let failing = points
            .iter()
            .find(|p| !p.passed() && p.value > passing.value);
        let Some(failing) = failing else {
            if passing.value >= high {
                return SearchStep::Done(SearchStatus::HighestPasses);
            }
            return self.or_spent(&points, self.snap((passing.value * 2.0).min(high)));
        };
        let (p, f) = (passing.value, failing.value);
        let next = self.snap(self.narrow(&points, p, f));
        if (f - p) / p <= self.config.precision.0 || next <= p || next >= f {
            return SearchStep::Done(SearchStatus::Found);
        }
        self.or_spent(&points, next)
    }

    /// `point`, unless the plan's points are spent.
    fn or_spent(&self, points: &[Point], point: f64) -> SearchStep {
        match points.len() >= Search::max_points(&self.config) {
            true => SearchStep::Done(SearchStatus::PointsSpent),
            false => SearchStep::Probe(point),
        }
    }

    /// The next point inside the bracket (p, f): the zero of the monotone fit of the
    /// worst margins, interpolated linearly when both ends are within their limits'
    /// scale (|margin| ≤ 1), kept away from the ends; else the geometric midpoint.
    fn narrow(&self, points: &[Point], p: f64, f: f64) -> f64 {
        let fitted = monotone_fit(points);
        let at = |x: f64| points.iter().position(|q| q.value == x).map(|i| fitted[i]);
        match (at(p), at(f)) {
            (Some(mp), Some(mf)) if mp > 0.0 && mf < 0.0 && mp <= 1.0 && mf >= -1.0 => {
                let share = (mp / (mp - mf)).clamp(INTERPOLATION_CLAMP, 1.0 - INTERPOLATION_CLAMP);
                p + (f - p) * share
            }
            _ => (p * f).sqrt(),
        }
    }

    /// The answer from the probes so far, ended by `status`.
    pub fn answer(&self, status: SearchStatus) -> CapacityAnswer {
        let points = self.points();
        let passing = points.iter().rfind(|p| p.passed());
        let failing = points
            .iter()
            .find(|p| !p.passed() && passing.is_none_or(|q| p.value > q.value));
        let runs_at = |value: f64| self.finished().filter(move |p| p.point == value);
        let goodput = passing.map(|p| {
            let mut g: Vec<f64> = runs_at(p.value).map(|r| r.goodput_rps).collect();
            g.sort_by(f64::total_cmp);
            median(&g)
        });
        let binding = failing.and_then(|f| {
            let broken = runs_at(f.value).last()?;
            let before = passing.and_then(|p| runs_at(p.value).last());
            // Of the objectives broken at the failing point, the one that had the
            // least room at the passing point (else the one most broken).
            broken
                .objectives
                .iter()
                .filter(|o| o.margin < 0.0)
                .min_by(|a, b| {
                    let room = |o: &ObjectiveMargin| {
                        before
                            .and_then(|q| q.objectives.iter().find(|m| m.objective == o.objective))
                            .map_or(o.margin, |m| m.margin)
                    };
                    room(a).total_cmp(&room(b))
                })
                .map(|o| o.objective.clone())
        });
        let per_replica = match self.config.dimension {
            SearchDimension::Rate => passing.map(|p| p.value),
            SearchDimension::Concurrency => goodput,
        };
        let replicas = self
            .config
            .target_rate
            .zip(per_replica.filter(|r| *r > 0.0))
            .map(|(target, per)| Replicas {
                target_rps: target.0,
                headroom: self.config.headroom.0,
                per_replica_rps: per,
                count: (target.0 / (per * self.config.headroom.0)).ceil().max(1.0) as u64,
            });
        CapacityAnswer {
            dimension: self.config.dimension.as_str().into(),
            unit: self.config.dimension.unit().into(),
            precision: self.config.precision.0,
            status,
            highest_passing: passing.map(|p| p.value),
            lowest_failing: failing.map(|p| p.value),
            binding_objective: binding,
            goodput_rps: goodput,
            replicas,
            points: points.len(),
            probes: self.probes.clone(),
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The closest non-increasing sequence to the points' margins (pool adjacent
/// violators, weighted by runs): load only ever eats margin, so a probe that did
/// better than a lighter one is noise, averaged with its neighbour.
fn monotone_fit(points: &[Point]) -> Vec<f64> {
    // Blocks of (mean, weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for p in points {
        blocks.push((p.margin, p.runs as f64, 1));
        while blocks.len() > 1 && blocks[blocks.len() - 2].0 < blocks[blocks.len() - 1].0 {
            let (m2, w2, n2) = blocks.pop().expect("two blocks");
            let (m1, w1, n1) = blocks.pop().expect("two blocks");
            blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2));
        }
    }
    blocks
        .into_iter()
        .flat_map(|(m, _, n)| std::iter::repeat_n(m, n))
        .collect()
}

impl CapacityAnswer {
    /// The answer in one plain sentence: what the endpoint sustains under which
    /// objectives, and what breaks first above it.
    pub fn sentence(&self) -> String {
        let unit = &self.unit;
        let objectives = self
            .probes
            .first()
            .map(|p| {
                p.objectives
                    .iter()
                    .map(|o| o.objective.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let what = match self.dimension.as_str() {
            "concurrency" => "holds",
            _ => "sustains",
        };
        let mut text = match (&self.status, self.highest_passing) {
            (SearchStatus::LowestFails, _) => format!(
                "This endpoint misses its objectives ({objectives}) even at the lowest point probed, {}",
                self.lowest_failing
                    .map_or(String::new(), |v| format!("{} {unit}", number(v)))
            ),
            (_, Some(v)) => format!("This endpoint {what} {} {unit} ({objectives})", number(v)),
            (_, None) => "No probe finished, so there is no answer yet".into(),
        };
        match (self.lowest_failing, &self.binding_objective) {
            (Some(f), Some(b)) if self.highest_passing.is_some() => {
                // "TTFT p99 ≤ 500 ms" breaks as "TTFT p99".
                let name = b
                    .split([' '])
                    .take_while(|w| !w.starts_with(['≤', '≥']))
                    .collect::<Vec<_>>()
                    .join(" ");
                text.push_str(&format!(
                    "; at {} {unit} {name} is the first objective to break",
                    number(f)
                ));
            }
            _ if self.status == SearchStatus::HighestPasses => {
                text.push_str(", the highest point probed: the boundary is above it")
            }
            _ => {}
        }
        match &self.status {
            SearchStatus::Partial { reason } => {
                text.push_str(&format!(" (partial: the search was stopped by {reason})"))
            }
            SearchStatus::PointsSpent => text.push_str(&format!(
                " (the planned points were spent before {:.0} % precision)",
                self.precision * 100.0
            )),
            _ => {}
        }
        text.push('.');
        text
    }
}

/// A point as the sentence writes it: three significant digits.
fn number(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Concurrency, Headroom, Positive, Precision, Rate, RequestCount};

    fn config(low: f64, high: f64) -> SearchConfig {
        SearchConfig {
            dimension: SearchDimension::Rate,
            low: Positive(low),
            high: Positive(high),
            requests: Some(RequestCount(100)),
            duration_s: None,
            repeats: Concurrency(2),
            precision: Precision(0.05),
            target_rate: Some(Rate(40.0)),
            headroom: Headroom(0.8),
        }
    }

    /// A probe of an endpoint whose TTFT p99 is 100 ms up to `boundary` and explodes
    /// past it; `noise` added to the margin.
    fn probe(point: f64, boundary: f64, noise: f64) -> ProbeVerdict {
        let ttft = match point <= boundary {
            true => 100.0 + 300.0 * point / boundary,
            false => 500.0 * (1.0 + 5.0 * (point / boundary - 1.0)) + 100.0,
        };
        let margin = (500.0 - ttft) / 500.0 + noise;
        ProbeVerdict {
            label: format!("p-{point}"),
            point,
            objectives: vec![ObjectiveMargin {
                objective: "TTFT p99 ≤ 500 ms".into(),
                limit: 500.0,
                actual: Some(ttft),
                margin,
            }],
            throughput_rps: point.min(boundary),
            goodput_rps: point.min(boundary),
            interrupted: false,
        }
    }

    fn run(mut search: Search, boundary: f64, noise: impl Fn(usize) -> f64) -> CapacityAnswer {
        for n in 0..100 {
            match search.next() {
                SearchStep::Probe(x) => search.record(probe(x, boundary, noise(n))),
                SearchStep::Done(status) => return search.answer(status),
            }
        }
        panic!("the search did not end");
    }

    #[test]
    fn brackets_then_narrows_to_the_precision() {
        let answer = run(Search::new(config(1.0, 1000.0)), 37.0, |_| 0.0);
        assert_eq!(answer.status, SearchStatus::Found);
        let (p, f) = (
            answer.highest_passing.unwrap(),
            answer.lowest_failing.unwrap(),
        );
        assert!(p <= 37.0 && f > 37.0 && (f - p) / p <= 0.05, "{p} {f}");
        assert!(answer.points <= 12, "{} points", answer.points);
        assert_eq!(
            answer.binding_objective.as_deref(),
            Some("TTFT p99 ≤ 500 ms")
        );
        // 40 req/s at 80 % of ~36 per replica: 2 replicas.
        assert_eq!(answer.replicas.as_ref().unwrap().count, 2);
        assert!(answer.sentence().starts_with("This endpoint sustains 3"));
    }

    #[test]
    fn a_noisy_probe_near_the_boundary_is_repeated_and_decided_by_the_median() {
        let with_margin = |point: f64, margin: f64| {
            let mut v = probe(point, 1000.0, 0.0);
            v.objectives[0].margin = margin;
            v
        };
        let mut search = Search::new(config(10.0, 100.0));
        search.record(with_margin(10.0, 0.5));
        // 20 fails, but only just: run again before it decides.
        search.record(with_margin(20.0, -0.05));
        assert_eq!(search.next(), SearchStep::Probe(20.0));
        // The second run passes clearly: the median (+0.05) passes, and the search
        // goes on above it.
        search.record(with_margin(20.0, 0.15));
        assert_eq!(search.next(), SearchStep::Probe(40.0));
        // Far from the boundary, once is enough.
        let mut search = Search::new(config(10.0, 100.0));
        search.record(probe(10.0, 100.0, 0.0));
        assert_eq!(search.next(), SearchStep::Probe(20.0));
    }

    #[test]
    fn the_ends_are_answers_too() {
        let below = run(Search::new(config(10.0, 100.0)), 5.0, |_| 0.0);
        assert_eq!(below.status, SearchStatus::LowestFails);
        assert_eq!(below.highest_passing, None);
        assert!(below.sentence().contains("even at the lowest point probed"));
        let above = run(Search::new(config(10.0, 100.0)), 500.0, |_| 0.0);
        assert_eq!(above.status, SearchStatus::HighestPasses);
        assert_eq!(above.highest_passing, Some(100.0));
    }

    #[test]
    fn concurrency_points_are_whole_and_adjacent_limits_end_it() {
        let mut c = config(1.0, 64.0);
        c.dimension = SearchDimension::Concurrency;
        let answer = run(Search::new(c), 11.5, |_| 0.0);
        assert_eq!(
            (answer.highest_passing, answer.lowest_failing),
            (Some(11.0), Some(12.0))
        );
        assert!(answer.probes.iter().all(|p| p.point.fract() == 0.0));
    }

    #[test]
    fn the_plan_bounds_the_points() {
        // 1 to 1,000: 11 doublings; 5 % from a factor of 2 at worst 8 steps.
        assert_eq!(Search::max_points(&config(1.0, 1000.0)), 11 + 8 + 1);
        assert_eq!(Search::max_probes(&config(1.0, 1000.0)), 40);
    }

    #[test]
    fn the_monotone_fit_pools_violators() {
        let points: Vec<Point> = [0.5, 0.2, 0.4, -0.3]
            .iter()
            .enumerate()
            .map(|(i, &margin)| Point {
                value: i as f64,
                margin,
                runs: 1,
            })
            .collect();
        let fit = monotone_fit(&points);
        assert_eq!(
            fit,
            vec![0.5, 0.30000000000000004, 0.30000000000000004, -0.3]
        );
    }
}
