//! The few sentences a report opens with: whose latencies were the client's own, who
//! finished first, who met the SLOs, who caused 429s, and what to use; with the SLO checks as a table. Judged from the saved
//! run alone; it writes no file.

use super::saved::SavedRun;
use super::table::{ResultTable, format_ms};
use crate::metric::Metric;
use crate::slo::Check;
use crate::summary::StrategySummary;

pub struct Verdict {
    pub findings: Vec<String>,
    pub recommendation: String,
    /// Per strategy (in run order), its SLO checks; empty without `[slo]`.
    pub slo: Vec<(String, Vec<Check>)>,
}

impl Verdict {
    pub fn slo_failed(&self) -> bool {
        self.slo
            .iter()
            .any(|(_, checks)| checks.iter().any(|c| !c.passed))
    }

    /// The SLO checks as a table, objectives as rows and strategies as columns:
    /// "✓ 812" or "✗ 1204"; `None` without `[slo]`.
    pub fn slo_table(&self) -> Option<ResultTable> {
        let (_, first) = self.slo.first()?;
        let rows = first
            .iter()
            .enumerate()
            .map(|(row, check)| {
                let cells = self
                    .slo
                    .iter()
                    .map(|(_, checks)| {
                        let c = &checks[row];
                        let actual = c.actual.map_or_else(
                            || "no data".into(),
                            |a| {
                                format!("{a:.3}")
                                    .trim_end_matches('0')
                                    .trim_end_matches('.')
                                    .to_string()
                            },
                        );
                        format!("{} {actual}", if c.passed { "✓" } else { "✗" })
                    })
                    .collect();
                (check.objective.clone(), cells)
            })
            .collect();
        Some(ResultTable {
            header: self.slo.iter().map(|(label, _)| label.clone()).collect(),
            rows,
        })
    }

    fn meets_slo(&self, label: &str) -> bool {
        self.slo
            .iter()
            .find(|(l, _)| l == label)
            .is_none_or(|(_, checks)| checks.iter().all(|c| c.passed))
    }
}

/// Every request answered: nothing failed, dropped or cut off.
fn complete(s: &StrategySummary) -> bool {
    s.requests.ok == s.requests.total
}

/// ", E2E p99 600 ms once sent (31000 ms counting the wait to be sent)": the second
/// figure only where waiting in the client adds noticeably to it.
fn latency_phrase(s: &StrategySummary) -> String {
    let p99 = |metric| s.latency(metric).map(|p| p.p99);
    match (p99(Metric::E2e), p99(Metric::E2eCorrected)) {
        (Some(sent), Some(intended)) if intended > sent * 1.1 => format!(
            ", E2E p99 {} ms once sent ({} ms counting the wait to be sent)",
            format_ms(sent),
            format_ms(intended)
        ),
        (Some(sent), _) => format!(", E2E p99 {} ms", format_ms(sent)),
        _ => String::new(),
    }
}

/// The E2E p99 strategies of equal throughput are judged by. Open-loop arrivals: from
/// the intended start, what a caller waits. A batch: from the send, since the wait to
/// be sent is the batch's length, about equal at equal throughput, while the server's
/// queueing is what differs.
fn judged_p99(s: &StrategySummary) -> Option<f64> {
    let metric = if s.scheduled_rate_per_s.is_some() {
        Metric::E2eCorrected
    } else {
        Metric::E2e
    };
    s.latency(metric).map(|p| p.p99)
}

pub fn verdict(run: &SavedRun) -> Verdict {
    let strategies: Vec<&StrategySummary> = run.strategies.iter().map(|s| &s.summary).collect();
    let slo = if run.slo.is_empty() {
        Vec::new()
    } else {
        strategies
            .iter()
            .map(|s| (s.label.clone(), run.slo.evaluate(s)))
            .collect()
    };
    let mut verdict = Verdict {
        findings: Vec::new(),
        recommendation: String::new(),
        slo,
    };
    if let Some(reason) = &run.summary.stopped {
        verdict.findings.push(format!(
            "Stopped early: {reason} (`[budget]`); requests after it were not sent and later strategies not run."
        ));
    }
    for skipped in &run.summary.skipped {
        verdict.findings.push(format!(
            "Skipped {} ({}): {}.",
            skipped.label, skipped.runtime, skipped.reason
        ));
    }
    verdict
        .findings
        .extend(strategies.iter().filter_map(|s| client_bound(s)));
    verdict.findings.push(finished_first(&strategies));
    verdict.findings.push(rate_limited(&strategies));
    verdict.findings.push(slo_summary(&verdict, &strategies));
    verdict.recommendation = recommend(&verdict, &strategies);
    verdict
}

/// A sentence for a strategy whose client, not the server, was the bottleneck,
/// judged again from the saved figures.
fn client_bound(s: &StrategySummary) -> Option<String> {
    let reason = s.client_health.as_ref()?.bottleneck()?;
    Some(format!(
        "**{}** was bound by the client, not the server ({reason}): its latencies are the client's, not the server's.",
        s.label
    ))
}

fn finished_first(strategies: &[&StrategySummary]) -> String {
    let by_makespan =
        |a: &&&StrategySummary, b: &&&StrategySummary| a.makespan_s.total_cmp(&b.makespan_s);
    let first_complete = strategies
        .iter()
        .filter(|s| complete(s))
        .min_by(by_makespan);
    let first_overall = strategies.iter().min_by(by_makespan);
    let mut line = match first_complete {
        Some(s) => format!(
            "Finished first with every request answered: **{}**, all {} in {:.2} s.",
            s.label, s.requests.total, s.makespan_s
        ),
        None => "No strategy got every request answered.".to_string(),
    };
    if let Some(s) = first_overall.filter(|s| !complete(s)) {
        line.push_str(&format!(
            " {} ended sooner ({:.2} s) but lost {} of {} requests.",
            s.label,
            s.makespan_s,
            s.requests.total - s.requests.ok,
            s.requests.total
        ));
    }
    line
}

fn rate_limited(strategies: &[&StrategySummary]) -> String {
    let counts: Vec<String> = strategies
        .iter()
        .map(|s| format!("{} {}", s.label, s.requests.rate_limited))
        .collect();
    format!("HTTP 429 (rate limited) responses: {}.", counts.join(", "))
}

fn slo_summary(verdict: &Verdict, strategies: &[&StrategySummary]) -> String {
    if verdict.slo.is_empty() {
        return "No `[slo]` in the scenario: add one to check latency, errors and throughput against targets.".into();
    }
    let (met, missed): (Vec<&&StrategySummary>, Vec<&&StrategySummary>) =
        strategies.iter().partition(|s| verdict.meets_slo(&s.label));
    let names = |list: &[&&StrategySummary]| {
        list.iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (met.is_empty(), missed.is_empty()) {
        (_, true) => format!("Every strategy met every SLO ({}).", names(&met)),
        (true, _) => format!("No strategy met every SLO (missed: {}).", names(&missed)),
        _ => format!(
            "Met every SLO: {}. Missed at least one: {}.",
            names(&met),
            names(&missed)
        ),
    }
}

/// Figures this close (2 %) count as equal: run-to-run noise is larger.
const SAME: f64 = 0.02;

/// The recommendation among complete strategies within the SLOs, and who came close.
struct Pick<'a> {
    best: &'a StrategySummary,
    /// As fast and as quick as the best, within [`SAME`].
    matched: Vec<&'a StrategySummary>,
    /// As fast, but with more latency.
    slower: Vec<&'a StrategySummary>,
}

/// The fastest strategies (within 2 % of the best throughput), then the lowest latency
/// among them (see [`judged_p99`]); among equals, a capped strategy, the smallest cap
/// first: it bounds the load it puts on a server that slows down. Past a server's knee
/// more concurrency adds no throughput, only queueing in the server, so the smallest
/// concurrency on the plateau wins, not whichever is a hair faster.
fn pick<'a>(candidates: &[&'a StrategySummary]) -> Option<Pick<'a>> {
    let top = candidates
        .iter()
        .map(|s| s.requests_per_s)
        .fold(f64::NAN, f64::max);
    let p99 = |s: &StrategySummary| judged_p99(s).unwrap_or(f64::MAX);
    let plateau: Vec<&StrategySummary> = candidates
        .iter()
        .copied()
        .filter(|s| s.requests_per_s >= top * (1.0 - SAME))
        .collect();
    let least = plateau.iter().map(|s| p99(s)).fold(f64::MAX, f64::min);
    let (near, slower): (Vec<&StrategySummary>, _) = plateau
        .into_iter()
        .partition(|s| p99(s) <= least * (1.0 + SAME));
    let best = *near.iter().min_by(|a, b| {
        (a.limit.is_none(), a.limit)
            .cmp(&(b.limit.is_none(), b.limit))
            .then(p99(a).total_cmp(&p99(b)))
    })?;
    let matched = near.into_iter().filter(|s| s.label != best.label).collect();
    Some(Pick {
        best,
        matched,
        slower,
    })
}

impl Pick<'_> {
    /// Why the others were not picked, in a sentence each.
    fn others(&self) -> String {
        let mut why = String::new();
        if !self.matched.is_empty() {
            let names: Vec<&str> = self.matched.iter().map(|s| s.label.as_str()).collect();
            why.push_str(&format!(
                " {} matched it within 2 % on throughput and latency",
                names.join(", ")
            ));
            why.push_str(if self.matched.iter().any(|s| s.limit.is_none()) {
                " without capping the requests in flight, which a server that slows down pays for."
            } else {
                "."
            });
        }
        if !self.slower.is_empty() {
            let names: Vec<String> = self
                .slower
                .iter()
                .map(|s| match judged_p99(s) {
                    Some(p99) => format!("{} (E2E p99 {} ms)", s.label, format_ms(p99)),
                    None => s.label.clone(),
                })
                .collect();
            why.push_str(&format!(
                " {} reached the same throughput (within 2 %) with more latency.",
                names.join(", ")
            ));
        }
        why
    }
}

fn recommend(verdict: &Verdict, strategies: &[&StrategySummary]) -> String {
    let candidates: Vec<&StrategySummary> = strategies
        .iter()
        .copied()
        .filter(|s| complete(s) && verdict.meets_slo(&s.label))
        .collect();
    if let Some(pick) = pick(&candidates) {
        let s = pick.best;
        let within = if verdict.slo.is_empty() {
            ""
        } else {
            ", within the SLOs"
        };
        return format!(
            "Use **{}**: it answered all {} requests at {:.2} req/s with no failures{}{within}.{}",
            s.label,
            s.requests.total,
            s.requests_per_s,
            latency_phrase(s),
            pick.others(),
        );
    }
    let closest = strategies.iter().max_by(|a, b| {
        a.requests
            .ok
            .cmp(&b.requests.ok)
            .then_with(|| b.makespan_s.total_cmp(&a.makespan_s))
    });
    match closest {
        Some(s) => format!(
            "No strategy answered every request{}. **{}** came closest ({} of {} ok); lower the concurrency, add retries, or raise the limit before relying on it.",
            if verdict.slo.is_empty() {
                ""
            } else {
                " within the SLOs"
            },
            s.label,
            s.requests.ok,
            s.requests.total
        ),
        None => "No strategy ran.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete strategy of 100 requests at `rps` with E2E p99 `sent_ms` once sent.
    fn strategy(label: &str, rps: f64, sent_ms: f64) -> StrategySummary {
        let p = |p99: f64| {
            serde_json::json!({"count": 100, "min": 1.0, "mean": 1.0, "p50": 1.0, "p90": 1.0,
                               "p95": 1.0, "p99": p99, "p999": p99, "max": p99})
        };
        serde_json::from_value(serde_json::json!({
            "label": label, "kind": "joinset", "limit": null, "interrupted": false,
            "requests": {"total": 100, "ok": 100, "failed": 0, "rate_limited": 0,
                         "cancelled": 0, "errors": {}},
            "makespan_s": 100.0 / rps, "scheduled_rate_per_s": null,
            "achieved_send_rate_per_s": null, "requests_per_s": rps,
            "output_tokens": 0, "output_tokens_per_s": 0.0,
            // Past the knee the wait to be sent is about equal; a hair lower for more
            // concurrency, which must not decide.
            "latency_ms": {
                (Metric::E2e.name()): p(sent_ms),
                (Metric::E2eCorrected.name()): p(22_000.0 - sent_ms / 10.0)
            },
            "mock": null
        }))
        .unwrap()
    }

    fn no_slo() -> Verdict {
        Verdict {
            findings: Vec::new(),
            recommendation: String::new(),
            slo: Vec::new(),
        }
    }

    #[test]
    fn under_open_loop_arrivals_the_wait_from_arrival_decides() {
        // Both keep up with 8 arrivals a second. The capped one sends later (less server
        // queueing once sent) but its callers wait longer from arrival.
        let open_loop = |label, sent_ms, intended_ms| {
            let mut s = strategy(label, 8.0, sent_ms);
            s.scheduled_rate_per_s = Some(8.0);
            s.latency_ms
                .get_mut(Metric::E2eCorrected.name())
                .unwrap()
                .p99 = intended_ms;
            s
        };
        let runs = [
            open_loop("semaphore-2", 900.0, 2500.0),
            open_loop("join_all", 1100.0, 1150.0),
        ];
        let refs: Vec<&StrategySummary> = runs.iter().collect();
        let advice = recommend(&no_slo(), &refs);
        assert!(advice.starts_with("Use **join_all**"), "{advice}");
        assert!(advice.contains("semaphore-2 (E2E p99 2500 ms)"), "{advice}");
    }

    #[test]
    fn among_equals_the_capped_strategy_is_recommended() {
        let mut capped = strategy("semaphore-8", 7.49, 1126.0);
        capped.limit = Some(8);
        let runs = [strategy("join_all", 7.49, 1125.0), capped];
        let refs: Vec<&StrategySummary> = runs.iter().collect();
        let advice = recommend(&no_slo(), &refs);
        assert!(advice.starts_with("Use **semaphore-8**"), "{advice}");
        assert!(
            advice.ends_with(
                "join_all matched it within 2 % on throughput and latency without capping the requests in flight, which a server that slows down pays for."
            ),
            "{advice}"
        );
    }

    #[test]
    fn past_the_knee_the_least_concurrency_on_the_plateau_is_recommended() {
        let sweep = [
            strategy("joinset-4", 4.90, 1215.0),
            strategy("joinset-8", 8.38, 1406.0),
            strategy("joinset-16", 8.38, 2628.0),
            strategy("joinset-32", 8.39, 4424.0),
        ];
        let refs: Vec<&StrategySummary> = sweep.iter().collect();
        let advice = recommend(&no_slo(), &refs);
        assert!(
            advice.starts_with("Use **joinset-8**: it answered all 100 requests at 8.38 req/s"),
            "{advice}"
        );
        assert!(
            advice.ends_with(
                "joinset-16 (E2E p99 2628 ms), joinset-32 (E2E p99 4424 ms) reached the same throughput (within 2 %) with more latency."
            ),
            "{advice}"
        );
    }
}
