//! The quota planner behind `llmbench quota`: a batch (the scenario's work items) against
//! a provider's per-minute quota, answered without sending anything: which limit binds,
//! the request rate it sustains, when the batch is done (the full buckets at the start
//! counted), the concurrency that holds that rate (Little's law, from the mock's latency
//! model or a saved run's E2E), the quota a `deadline_s` needs, and the cost. The items
//! are walked once, as they are drawn, into the few totals a plan needs ([`Batch`]), so
//! planning a batch of any length takes the same memory.
//!
//! Owns the planning over a workload; the per-bucket arithmetic (what a request costs
//! each dimension, how a bucket drains and refills) is [`crate::quota`]'s, the same the
//! mock's buckets and the `rate` strategy use.

use crate::metric::Metric;
use crate::quota::{Allowance, Dimension};
use crate::scenario::{OtpmMode, QuotaConfig, RATE_HEADROOM, Scenario, Target};
use crate::summary::Summary;
use crate::workload::{WorkItem, WorkItems};
use std::fmt;
use std::path::Path;

/// The limits and rules a plan is made against.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRules {
    /// Per-minute limits, by dimension.
    pub limits: Vec<(Dimension, u64)>,
    pub otpm_mode: OtpmMode,
    /// The share of the quota the client uses.
    pub headroom: f64,
}

/// Where the latency a plan uses came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Mean end-to-end seconds of one request.
    pub mean_s: f64,
    pub source: String,
}

/// One limit's share of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionPlan {
    pub dimension: Dimension,
    pub limit: u64,
    /// What the whole batch leaves charged to it.
    pub total_cost: f64,
    /// Requests per second it sustains for this batch's requests.
    pub sustained_rate: f64,
    /// Seconds until it has admitted the whole batch.
    pub last_admission_s: f64,
    /// The per-minute limit that finishes by the deadline, if one is set.
    pub needed_for_deadline: Option<u64>,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaPlan {
    pub requests: u64,
    pub dimensions: Vec<DimensionPlan>,
    /// The dimension that sustains the lowest rate.
    pub binding: Dimension,
    /// Requests per second the quota sustains (the binding dimension's).
    pub rate: f64,
    /// Seconds until the last request is admitted, sending as fast as the quota admits
    /// (a `rate` strategy at the quota): the full buckets at once, then the refill.
    pub last_admission_s: f64,
    pub latency: Option<Latency>,
    /// Requests in flight that hold `rate` (Little's law), rounded up.
    pub concurrency: Option<u64>,
    /// Seconds until the batch is done at the quota's pace (last admission plus one
    /// request's latency).
    pub eta_s: f64,
    /// Seconds until the batch is done at `concurrency` in flight.
    pub eta_at_concurrency_s: Option<f64>,
    /// The batch's offered rate when it arrives over time (not all at once).
    pub offered_rate: Option<f64>,
    pub deadline_s: Option<f64>,
    /// Dollars at `[target.price]`, for the tokens expected to be generated.
    pub cost: Option<f64>,
    pub headroom: f64,
}

/// Every dimension, in the order quotas list them.
const DIMENSIONS: [Dimension; 4] = [
    Dimension::Requests,
    Dimension::Tokens,
    Dimension::InputTokens,
    Dimension::OutputTokens,
];

/// Why no plan can be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "no quota to plan against: give [quota] limits (rpm, tpm; or rpm, itpm, otpm) or, on the mock, [mock.rate_limit]"
    )]
    NoLimits,
    #[error("the workload offers no requests")]
    NoRequests,
    #[error("quota.latency_from: {0}")]
    Latency(String),
}

impl QuotaRules {
    /// The scenario's quota: `[quota]`'s limits, else the mock's `[mock.rate_limit]`.
    pub fn of(scenario: &Scenario) -> Result<QuotaRules, PlanError> {
        let config = scenario.quota().cloned().unwrap_or_default();
        let own = [config.rpm, config.tpm, config.itpm, config.otpm];
        let mock = &scenario.mock.rate_limit;
        let (counts, otpm_mode) = match (own.iter().any(Option::is_some), &scenario.target) {
            (true, _) => (own, config.otpm_mode.unwrap_or_default()),
            (false, Target::Mock { .. }) => {
                ([mock.rpm, mock.tpm, mock.itpm, mock.otpm], mock.otpm_mode)
            }
            (false, _) => return Err(PlanError::NoLimits),
        };
        let limits: Vec<(Dimension, u64)> = DIMENSIONS
            .into_iter()
            .zip(counts)
            .filter_map(|(d, count)| Some((d, count?.0)))
            .collect();
        if limits.is_empty() {
            return Err(PlanError::NoLimits);
        }
        Ok(QuotaRules {
            limits,
            otpm_mode,
            headroom: config.headroom.map_or(RATE_HEADROOM, |h| h.0),
        })
    }
}

/// Tokens each item is expected to generate: `[quota] output_tokens`, else the mock's
/// `output_tokens`, else its `max_tokens`; never more than its `max_tokens`.
fn expected_output(scenario: &Scenario, config: &QuotaConfig, item: &WorkItem) -> u32 {
    let mock = match scenario.target {
        Target::Mock { .. } => scenario.mock.output_tokens,
        _ => None,
    };
    config
        .output_tokens
        .or(mock)
        .map_or(item.max_tokens, |d| d.0.typical().round() as u32)
        .clamp(1, item.max_tokens.max(1))
}

/// The mean latency the plan uses: a saved run's E2E mean, or the mock's model.
pub fn latency(scenario: &Scenario, batch: &Batch) -> Result<Option<Latency>, PlanError> {
    let config = scenario.quota().cloned().unwrap_or_default();
    if let Some(path) = &config.latency_from {
        return measured_latency(
            &scenario.folder().join(path),
            config.latency_strategy.as_deref(),
        )
        .map(Some);
    }
    if !matches!(scenario.target, Target::Mock { .. }) {
        return Ok(None);
    }
    let n = batch.requests.max(1) as f64;
    let (output, prompt) = (batch.output_total / n, batch.prompt_total / n);
    let mock = &scenario.mock;
    let prefill_ms = mock.capacity.as_ref().map_or(0.0, |c| {
        c.overhead_ms.0 + c.prefill_us_per_token.0 * prompt / 1000.0
    });
    let ms = prefill_ms + mock.ttft_ms.0.typical() + (output - 1.0) * mock.itl_ms.0.typical();
    Ok(Some(Latency {
        mean_s: ms / 1000.0,
        source: "the mock's latency model".into(),
    }))
}

fn measured_latency(path: &Path, strategy: Option<&str>) -> Result<Latency, PlanError> {
    let dir = match path.file_name().is_some_and(|f| f == crate::summary::FILE) {
        true => path.parent().unwrap_or(Path::new(".")),
        false => path,
    };
    let summary = Summary::load(dir).map_err(|e| PlanError::Latency(format!("{e:#}")))?;
    let chosen = match strategy {
        Some(label) => summary.strategies.iter().find(|s| s.label == label),
        None => summary.strategies.first(),
    }
    .ok_or_else(|| {
        let labels: Vec<&str> = summary
            .strategies
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        PlanError::Latency(format!(
            "{} has no strategy {}; it has: {}",
            dir.display(),
            strategy.unwrap_or("at all"),
            labels.join(", ")
        ))
    })?;
    let e2e = chosen.latency(Metric::E2e).ok_or_else(|| {
        PlanError::Latency(format!(
            "{}: {} answered no request",
            dir.display(),
            chosen.label
        ))
    })?;
    Ok(Latency {
        mean_s: e2e.mean / 1000.0,
        source: format!("{}'s E2E mean in {}", chosen.label, dir.display()),
    })
}

/// Plans the batch against `rules`, with the latency (if known), the deadline and prices.
pub fn plan(
    scenario: &Scenario,
    batch: &Batch,
    rules: &QuotaRules,
    latency: Option<Latency>,
) -> Result<QuotaPlan, PlanError> {
    if batch.requests == 0 {
        return Err(PlanError::NoRequests);
    }
    let config = scenario.quota().cloned().unwrap_or_default();
    let mut plan = plan_batch(batch, rules, latency, config.deadline_s.map(|d| d.0));
    plan.cost = scenario.target.price().map(|p| {
        (batch.prompt_total * p.input_per_million.0 + batch.output_total * p.output_per_million.0)
            / 1e6
    });
    let span = batch.last_at_s;
    plan.offered_rate = (span > 0.0).then(|| (batch.requests as f64 - 1.0) / span);
    Ok(plan)
}

/// What the plan needs of the work items, gathered in one pass as they are drawn: their
/// count, the totals of each cost and the last arrival. It holds no item, so a batch of
/// any length is planned in the same memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    requests: u64,
    prompt_total: f64,
    output_total: f64,
    max_tokens_total: f64,
    /// What the batch leaves charged to each of [`DIMENSIONS`] once every request has
    /// ended.
    settled: [f64; 4],
    /// The last item's intended start.
    last_at_s: f64,
}

impl Batch {
    /// The scenario's work items, each expected to generate what [`expected_output`]
    /// says.
    pub fn of(scenario: &Scenario, items: &WorkItems) -> Batch {
        let config = scenario.quota().cloned().unwrap_or_default();
        Batch::new(items.iter().map(|item| {
            let output = expected_output(scenario, &config, &item);
            (item, output)
        }))
    }

    /// Items with the tokens each is expected to generate.
    fn new(items: impl Iterator<Item = (WorkItem, u32)>) -> Batch {
        let mut batch = Batch {
            requests: 0,
            prompt_total: 0.0,
            output_total: 0.0,
            max_tokens_total: 0.0,
            settled: [0.0; 4],
            last_at_s: 0.0,
        };
        for (item, output) in items {
            batch.requests += 1;
            batch.prompt_total += f64::from(item.prompt_tokens);
            batch.output_total += f64::from(output);
            batch.max_tokens_total += f64::from(item.max_tokens);
            for (total, d) in batch.settled.iter_mut().zip(DIMENSIONS) {
                *total += d.settled_cost(item.prompt_tokens, item.max_tokens, output);
            }
            batch.last_at_s = item.at.as_secs_f64();
        }
        batch
    }

    fn len(&self) -> f64 {
        self.requests as f64
    }

    /// What the batch leaves charged to `dimension` once every request has ended.
    fn settled(&self, dimension: Dimension) -> f64 {
        let at = DIMENSIONS.iter().position(|&d| d == dimension);
        at.map_or(0.0, |at| self.settled[at])
    }
}

fn plan_batch(
    batch: &Batch,
    rules: &QuotaRules,
    latency: Option<Latency>,
    deadline_s: Option<f64>,
) -> QuotaPlan {
    let n = batch.len();
    let w = latency.as_ref().map(|l| l.mean_s);
    let reserve = rules.otpm_mode == OtpmMode::Reserve;
    // The part of each output reservation held until its request ends.
    let max_tokens_mean = batch.max_tokens_total / n;
    let held = (max_tokens_mean - batch.output_total / n).max(0.0);
    let allowance = |limit: u64| Allowance::per_minute(limit as f64, rules.headroom);
    let rate_of = |d: Dimension, limit: u64, total: f64| {
        let a = allowance(limit);
        let rate = a.sustained_rate(total / n);
        match (d, reserve, w) {
            // Every request in flight holds its whole reservation: at most a bucketful.
            (Dimension::OutputTokens, true, Some(w)) if w > 0.0 => {
                rate.min(a.capacity / (max_tokens_mean * w))
            }
            _ => rate,
        }
    };
    let totals: Vec<(Dimension, u64, f64)> = rules
        .limits
        .iter()
        .map(|&(d, limit)| (d, limit, batch.settled(d)))
        .collect();
    let rate = totals
        .iter()
        .map(|&(d, limit, total)| rate_of(d, limit, total))
        .fold(f64::INFINITY, f64::min);
    let in_flight = w.map_or(1.0, |w| (rate * w).ceil().clamp(1.0, n));
    let dimensions: Vec<DimensionPlan> = totals
        .iter()
        .map(|&(dimension, limit, total)| {
            // Reservations still held when the last request is admitted.
            let cushion = match (dimension, reserve) {
                (Dimension::OutputTokens, true) => in_flight * held,
                _ => 0.0,
            };
            DimensionPlan {
                dimension,
                limit,
                total_cost: total,
                sustained_rate: rate_of(dimension, limit, total),
                last_admission_s: allowance(limit).last_admission(total + cushion),
                needed_for_deadline: deadline_s.map(|d| {
                    Allowance::limit_for(total + cushion, d - w.unwrap_or(0.0), rules.headroom)
                        .ceil() as u64
                }),
            }
        })
        .collect();
    let binding = dimensions
        .iter()
        .min_by(|a, b| a.sustained_rate.total_cmp(&b.sustained_rate))
        .map_or(Dimension::Requests, |d| d.dimension);
    let last_admission_s = dimensions
        .iter()
        .map(|d| d.last_admission_s)
        .fold(0.0, f64::max);
    let concurrency = w.map(|w| (rate * w).ceil().max(1.0) as u64);
    // At `c` in flight, `c / w` requests a second until a bucket runs dry, then the
    // quota's rate; the last is sent when all but the `c` in flight have gone.
    let eta_at_concurrency_s = w.zip(concurrency).map(|(w, c)| {
        let send_rate = c as f64 / w;
        let last_sent = dimensions
            .iter()
            .map(|d| {
                let cost = d.total_cost / n;
                match allowance(d.limit).dry_after(send_rate, cost) {
                    Some(dry) if n > send_rate * dry => {
                        dry + (n - send_rate * dry) / d.sustained_rate
                    }
                    _ => (n - c as f64).max(0.0) / send_rate,
                }
            })
            .fold(0.0, f64::max);
        last_sent + w
    });
    QuotaPlan {
        requests: batch.requests,
        binding,
        rate,
        last_admission_s,
        eta_s: last_admission_s + w.unwrap_or(0.0),
        latency,
        concurrency,
        eta_at_concurrency_s,
        dimensions,
        offered_rate: None,
        deadline_s,
        cost: None,
        headroom: rules.headroom,
    }
}

/// How a dimension is written in quotas.
pub fn dimension_name(d: Dimension) -> &'static str {
    match d {
        Dimension::Requests => "RPM",
        Dimension::Tokens => "TPM",
        Dimension::InputTokens => "ITPM",
        Dimension::OutputTokens => "OTPM",
    }
}

impl fmt::Display for QuotaPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let binding = dimension_name(self.binding);
        writeln!(
            f,
            "{} requests at {:.0} % of the quota: {binding} binds, at {:.2} req/s ({:.0} a minute).",
            self.requests,
            self.headroom * 100.0,
            self.rate,
            self.rate * 60.0
        )?;
        for d in &self.dimensions {
            writeln!(
                f,
                "  {:<5} {:>14} a minute: {:>14.0} charged in all, sustains {:>9.2} req/s, last request admitted at {}",
                dimension_name(d.dimension),
                d.limit,
                d.total_cost,
                d.sustained_rate,
                duration(d.last_admission_s)
            )?;
        }
        if let Some(offered) = self.offered_rate {
            let verdict = match offered <= self.rate {
                true => "within the quota",
                false => "more than the quota sustains: requests will queue or draw 429s",
            };
            writeln!(f, "The workload arrives at {offered:.2} req/s, {verdict}.")?;
        }
        writeln!(
            f,
            "Batch ETA sending as fast as the quota admits (a `rate` strategy at this quota): {} (the full buckets at once, then the refill{}).",
            duration(self.eta_s),
            match &self.latency {
                Some(l) => format!(", plus {:.0} ms for the last answer", l.mean_s * 1000.0),
                None => String::new(),
            }
        )?;
        match (&self.latency, self.concurrency, self.eta_at_concurrency_s) {
            (Some(l), Some(c), Some(eta)) => writeln!(
                f,
                "Concurrency: {c} in flight hold {:.2} req/s at {:.0} ms a request ({}; Little's law); the batch at {c} in flight: {}.",
                self.rate,
                l.mean_s * 1000.0,
                l.source,
                duration(eta)
            )?,
            _ => writeln!(
                f,
                "Concurrency: unknown without a latency: set quota.latency_from to a saved run's summary.json."
            )?,
        }
        if let Some(deadline) = self.deadline_s {
            let needed: Vec<String> = self
                .dimensions
                .iter()
                .filter_map(|d| {
                    let n = d.needed_for_deadline?;
                    Some(format!(
                        "{} {n}{}",
                        dimension_name(d.dimension),
                        if n <= d.limit { " (met)" } else { "" }
                    ))
                })
                .collect();
            writeln!(
                f,
                "To finish within {}: {}.",
                duration(deadline),
                needed.join(", ")
            )?;
        }
        match self.cost {
            Some(cost) => write!(f, "Cost: ${cost:.2} at [target.price]."),
            None => write!(f, "Cost: unknown (set [target.price])."),
        }
    }
}

/// "42.0 s", "12 min 30 s", "3 h 05 min".
fn duration(s: f64) -> String {
    match s {
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0),
        s => format!(
            "{} h {:02.0} min",
            (s / 3600.0).floor(),
            (s % 3600.0) / 60.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn items(n: u32, prompt: u32, max_tokens: u32) -> Vec<WorkItem> {
        (0..n)
            .map(|index| WorkItem {
                index,
                prompt: None,
                at: Duration::ZERO,
                prompt_tokens: prompt,
                max_tokens,
                shared_prefix: 0,
            })
            .collect()
    }

    fn plan_of(
        items: &[WorkItem],
        generated: u32,
        limits: &[(Dimension, u64)],
        mode: OtpmMode,
        latency_s: Option<f64>,
        deadline_s: Option<f64>,
    ) -> QuotaPlan {
        let batch = Batch::new(items.iter().map(|i| (i.clone(), generated)));
        let rules = QuotaRules {
            limits: limits.to_vec(),
            otpm_mode: mode,
            headroom: 1.0,
        };
        let latency = latency_s.map(|mean_s| Latency {
            mean_s,
            source: "test".into(),
        });
        plan_batch(&batch, &rules, latency, deadline_s)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn openai_tpm_is_charged_the_larger_of_max_tokens_and_prompt() {
        // The issue's batch: 50,000 documents of 1,200 prompt tokens, answers of 300
        // (max_tokens 300), at 5,000 RPM and 2,000,000 TPM.
        let batch = items(50_000, 1200, 300);
        let limits = [(Dimension::Requests, 5000), (Dimension::Tokens, 2_000_000)];
        let p = plan_of(&batch, 300, &limits, OtpmMode::Reserve, Some(6.0), None);
        // TPM charges max(300, 1200) = 1,200 a request: 2,000,000 / 60 / 1,200 = 27.78
        // req/s, below RPM's 5,000 / 60 = 83.3: TPM binds.
        assert_eq!(p.binding, Dimension::Tokens);
        assert!(close(p.rate, 2_000_000.0 / 60.0 / 1200.0), "{}", p.rate);
        // 60,000,000 tokens, 2,000,000 at once, the rest at 33,333.3 a second: 1,740 s;
        // plus one request's 6 s.
        assert!(close(p.last_admission_s, 1740.0), "{}", p.last_admission_s);
        assert!(close(p.eta_s, 1746.0));
        // Little's law: 27.78 req/s × 6 s = 166.7, so 167 in flight.
        assert_eq!(p.concurrency, Some(167));
        // RPM: 50,000 requests, 5,000 at once, 83.33 a second: 540 s; not binding.
        let rpm = &p.dimensions[0];
        assert!(close(rpm.last_admission_s, 540.0));
        // A prompt shorter than max_tokens is charged max_tokens: 100 prompt, 300 max.
        let short = plan_of(
            &items(10, 100, 300),
            300,
            &[(Dimension::Tokens, 600)],
            OtpmMode::Reserve,
            None,
            None,
        );
        assert!(close(short.dimensions[0].total_cost, 3000.0));
    }

    #[test]
    fn a_deadline_asks_for_the_quota_that_drains_the_batch_in_time() {
        // 1,000 requests at 60 RPM take (1,000 − 60) / 1 = 940 s. Within 600 s (no
        // latency known): a bucket C admitting 1,000 in 600 s needs C + 10·C ≥ 1,000,
        // C = 90.9, so 91 RPM.
        let p = plan_of(
            &items(1000, 10, 10),
            10,
            &[(Dimension::Requests, 60)],
            OtpmMode::Reserve,
            None,
            Some(600.0),
        );
        assert!(close(p.eta_s, 940.0));
        assert_eq!(p.dimensions[0].needed_for_deadline, Some(91));
        assert_eq!(p.concurrency, None);
    }

    #[test]
    fn anthropic_otpm_reserved_holds_max_tokens_while_generated_charges_what_was_made() {
        // 100 requests, prompt 1,000, max_tokens 1,000, 200 generated, 4 s each; 50 RPM,
        // 100,000 ITPM, 10,000 OTPM.
        let batch = items(100, 1000, 1000);
        let limits = [
            (Dimension::Requests, 50),
            (Dimension::InputTokens, 100_000),
            (Dimension::OutputTokens, 10_000),
        ];
        let generated = plan_of(&batch, 200, &limits, OtpmMode::Generated, Some(4.0), None);
        // OTPM as generated: 166.7 tokens a second / 200 = 0.833 req/s, as RPM's 50/60:
        // a tie; ITPM 1,666.7 / 1,000 = 1.667 req/s.
        assert!(close(generated.rate, 50.0 / 60.0), "{}", generated.rate);
        // 20,000 generated, 10,000 at once, the rest at 166.7 a second: 60 s.
        let otpm = &generated.dimensions[2];
        assert!(
            close(otpm.last_admission_s, 60.0),
            "{}",
            otpm.last_admission_s
        );
        // Reserved: each of the requests in flight holds 1,000 for 4 s, so a bucket of
        // 10,000 holds 10 at once: 10 / 4 s = 2.5 req/s, not binding here; in flight at
        // the quota's 0.833 req/s: ⌈3.33⌉ = 4, each holding 800 unreturned when the last
        // is admitted: (20,000 + 3,200 − 10,000) / 166.7 = 79.2 s.
        let reserved = plan_of(&batch, 200, &limits, OtpmMode::Reserve, Some(4.0), None);
        let otpm = &reserved.dimensions[2];
        assert!(
            close(otpm.sustained_rate, 50.0 / 60.0),
            "{}",
            otpm.sustained_rate
        );
        assert!(close(otpm.last_admission_s, 13_200.0 / (10_000.0 / 60.0)));
        // With 20 s responses the reservations bind: 10,000 / (1,000 × 20) = 0.5 req/s.
        let slow = plan_of(&batch, 200, &limits, OtpmMode::Reserve, Some(20.0), None);
        assert_eq!(slow.binding, Dimension::OutputTokens);
        assert!(close(slow.rate, 0.5), "{}", slow.rate);
        let slow_generated = plan_of(&batch, 200, &limits, OtpmMode::Generated, Some(20.0), None);
        assert!(close(slow_generated.rate, 50.0 / 60.0));
    }

    #[test]
    fn a_batch_is_gathered_in_one_pass_over_the_drawn_items() {
        let scenario = Scenario::parse(
            r#"
name = "drawn"
[target]
kind = "mock"
[mock]
output_tokens = 40
rate_limit = { rpm = 600, tpm = 90000 }
[workload]
arrival = { kind = "poisson", rate = 20 }
duration_s = 30
prompt_tokens = { dist = "lognormal", median = 60, p99 = 600 }
max_tokens = { dist = "uniform", min = 24, max = 80 }
[[strategy]]
kind = "rate"
rpm = 600
"#,
            "test",
        )
        .unwrap();
        let items = crate::workload::load(&scenario).unwrap();
        let batch = Batch::of(&scenario, &items);
        let all: Vec<WorkItem> = items.iter().collect();
        let sum = |f: fn(&WorkItem) -> u32| all.iter().map(|i| f64::from(f(i))).sum::<f64>();
        assert_eq!(batch.requests, all.len() as u64);
        assert_eq!(batch.prompt_total, sum(|i| i.prompt_tokens));
        assert_eq!(batch.max_tokens_total, sum(|i| i.max_tokens));
        assert_eq!(batch.output_total, sum(|i| i.max_tokens.min(40)));
        assert_eq!(batch.settled(Dimension::Requests), all.len() as f64);
        assert_eq!(
            batch.settled(Dimension::Tokens),
            sum(|i| i.max_tokens.max(i.prompt_tokens))
        );
        assert_eq!(batch.last_at_s, all.last().unwrap().at.as_secs_f64());
        let empty = Batch::new(std::iter::empty());
        let rules = QuotaRules::of(&scenario).unwrap();
        assert!(matches!(
            plan(&scenario, &empty, &rules, None),
            Err(PlanError::NoRequests)
        ));
    }

    #[test]
    fn the_eta_at_the_recommended_concurrency_forgoes_the_burst() {
        // 600 requests at 60 RPM, 2 s each: ⌈1 × 2⌉ = 2 in flight send 1 a second, never
        // drying the bucket: 600 s; at the quota's pace, 60 at once then 1 a second:
        // 540 s + 2 s.
        let p = plan_of(
            &items(600, 10, 10),
            10,
            &[(Dimension::Requests, 60)],
            OtpmMode::Reserve,
            Some(2.0),
            None,
        );
        assert_eq!(p.concurrency, Some(2));
        assert!(close(p.eta_s, 542.0));
        assert!(close(p.eta_at_concurrency_s.unwrap(), 600.0));
    }
}
