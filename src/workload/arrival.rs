//! Arrival schedules: when each work item becomes available, as an offset from the
//! strategy's start. Offsets are drawn in order from the seed, so every strategy is
//! offered the same schedule, and a schedule is anchored to the start (`start + offset`),
//! never built from chained sleeps that drift.

use crate::scenario::{ArrivalConfig, RampStage};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp, Gamma};

impl ArrivalConfig {
    /// The arrival offsets in seconds, at most `max_requests` of them and all before
    /// `max_duration_s` (when given).
    pub fn offsets(
        &self,
        max_requests: Option<u64>,
        max_duration_s: Option<f64>,
        rng: ChaCha8Rng,
    ) -> Vec<f64> {
        self.offset_stream(max_requests, max_duration_s, rng)
            .collect()
    }

    /// The same offsets, drawn one at a time from `rng` (which the random schedules
    /// draw their gaps from).
    pub fn offset_stream(
        &self,
        max_requests: Option<u64>,
        max_duration_s: Option<f64>,
        rng: ChaCha8Rng,
    ) -> Offsets {
        let kind = match self {
            ArrivalConfig::Batch => Schedule::Batch,
            ArrivalConfig::Constant { rate } => Schedule::Constant { rate: rate.0, k: 0 },
            ArrivalConfig::Poisson { rate } => Schedule::Gaps {
                t: 0.0,
                gaps: Gaps::Exp(Exp::new(rate.0).expect("rate is positive")),
            },
            ArrivalConfig::Gamma { rate, burstiness } => Schedule::Gaps {
                t: 0.0,
                gaps: Gaps::Gamma(
                    Gamma::new(burstiness.0, 1.0 / (rate.0 * burstiness.0))
                        .expect("shape and scale are positive"),
                ),
            },
            ArrivalConfig::Bursts { size, interval_s } => Schedule::Bursts {
                size: size.0,
                interval_s: interval_s.0,
                k: 0,
            },
            ArrivalConfig::Ramp { start_rate, stages } => {
                Schedule::Ramp(Ramp::new(*start_rate, stages.as_slice().into()))
            }
            // A trace's times come with its rows; see `workload::generate`.
            ArrivalConfig::Trace { .. } => Schedule::Ended,
        };
        Offsets {
            schedule: kind,
            rng,
            left: max_requests.map_or(u64::MAX, |n| n),
            max_duration_s,
        }
    }
}

/// Arrival offsets drawn as they are asked for: a clone resumes where the original
/// stands, so a run holds a schedule's place rather than its list.
#[derive(Clone)]
pub struct Offsets {
    schedule: Schedule,
    rng: ChaCha8Rng,
    left: u64,
    max_duration_s: Option<f64>,
}

#[derive(Clone)]
enum Schedule {
    Batch,
    Constant {
        rate: f64,
        k: u64,
    },
    /// Arrival 0 at t = 0, then cumulative random gaps.
    Gaps {
        t: f64,
        gaps: Gaps,
    },
    Bursts {
        size: u64,
        interval_s: f64,
        k: u64,
    },
    Ramp(Ramp),
    Ended,
}

#[derive(Clone)]
enum Gaps {
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
}

impl Offsets {
    /// The generator as the schedule left it: where the draws after it start.
    pub fn into_rng(self) -> ChaCha8Rng {
        self.rng
    }
}

impl Iterator for Offsets {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        if self.left == 0 {
            return None;
        }
        let next = match &mut self.schedule {
            Schedule::Batch => Some(0.0),
            Schedule::Constant { rate, k } => {
                *k += 1;
                Some((*k - 1) as f64 / *rate)
            }
            Schedule::Gaps { t, gaps } => {
                // The gap after this arrival is drawn with it, as the schedule always has.
                let now = *t;
                *t += match gaps {
                    Gaps::Exp(d) => d.sample(&mut self.rng),
                    Gaps::Gamma(d) => d.sample(&mut self.rng),
                };
                Some(now)
            }
            Schedule::Bursts {
                size,
                interval_s,
                k,
            } => {
                *k += 1;
                Some(((*k - 1) / *size) as f64 * *interval_s)
            }
            Schedule::Ramp(ramp) => ramp.next(),
            Schedule::Ended => None,
        };
        match next {
            Some(t) if self.max_duration_s.is_none_or(|d| t < d) => {
                self.left -= 1;
                Some(t)
            }
            _ => {
                self.schedule = Schedule::Ended;
                self.left = 0;
                None
            }
        }
    }
}

/// The k-th arrival comes when the integral of the rate reaches k, so every interval
/// receives exactly the arrivals its rate integrates to (rounded). Within a stage going
/// from r0 to r1 over D seconds, Λ(τ) = r0·τ + (r1 − r0)·τ² / 2D; solving Λ(τ) = m gives
/// τ = 2m / (r0 + √(r0² + 2(r1 − r0)m / D)), stable for rising and falling rates.
#[derive(Clone)]
struct Ramp {
    stages: std::sync::Arc<[RampStage]>,
    k: u64,
    stage: usize,
    /// Time at which the current stage starts, and Λ at that time.
    stage_start: f64,
    stage_base: f64,
    r0: f64,
}

impl Ramp {
    fn new(start_rate: f64, stages: std::sync::Arc<[RampStage]>) -> Ramp {
        Ramp {
            stages,
            k: 0,
            stage: 0,
            stage_start: 0.0,
            stage_base: 0.0,
            r0: start_rate,
        }
    }

    fn next(&mut self) -> Option<f64> {
        while let Some(s) = self.stages.get(self.stage) {
            let (r0, r1, d) = (self.r0, s.rate, s.duration_s.0);
            let m = self.k as f64 - self.stage_base;
            let total = (r0 + r1) / 2.0 * d;
            if m < total {
                let root = (r0 * r0 + 2.0 * (r1 - r0) * m / d).max(0.0).sqrt();
                // m = 0 with r0 = 0 would be 0/0: the stage's first arrival is at its start.
                let tau = if m <= 0.0 { 0.0 } else { 2.0 * m / (r0 + root) };
                self.k += 1;
                return Some(self.stage_start + tau.clamp(0.0, d));
            }
            self.stage += 1;
            self.stage_start += d;
            self.stage_base += total;
            self.r0 = r1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Rate, RequestCount, Scale, Seconds};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn per_second(offsets: &[f64]) -> Vec<u64> {
        let seconds = offsets.iter().fold(0.0f64, |a, &b| a.max(b)) as usize + 1;
        let mut counts = vec![0; seconds];
        for t in offsets {
            counts[*t as usize] += 1;
        }
        counts
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(5)
    }

    #[test]
    fn constant_rate_gives_exactly_rate_arrivals_each_second() {
        let schedule = ArrivalConfig::Constant { rate: Rate(7.0) };
        let offsets = schedule.offsets(None, Some(5.0), rng());
        assert_eq!(per_second(&offsets), vec![7; 5]);
        let offsets = schedule.offsets(Some(10), Some(5.0), rng());
        assert_eq!(offsets.len(), 10, "the request count bounds first");
    }

    #[test]
    fn ramp_arrivals_per_second_follow_the_integral_of_the_rate() {
        // 0 → 10 req/s over 4 s, then 10 req/s for 2 s, then down to 0 over 2 s.
        let schedule = ArrivalConfig::Ramp {
            start_rate: 0.0,
            stages: vec![
                RampStage {
                    rate: 10.0,
                    duration_s: Seconds(4.0),
                },
                RampStage {
                    rate: 10.0,
                    duration_s: Seconds(2.0),
                },
                RampStage {
                    rate: 0.0,
                    duration_s: Seconds(2.0),
                },
            ],
        };
        let offsets = schedule.offsets(None, None, rng());
        // Λ(t) at whole seconds: 0, 1.25, 5, 11.25, 20, 30, 40, 47.5, 50; arrival k comes
        // when Λ reaches k, so second s receives ceil(Λ(s+1)) − ceil(Λ(s)) arrivals.
        assert_eq!(per_second(&offsets), vec![2, 3, 7, 8, 10, 10, 8, 2]);
        assert_eq!(offsets.len(), 50);
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn poisson_gaps_have_the_exponential_mean_and_variance() {
        let rate = 50.0;
        let offsets =
            ArrivalConfig::Poisson { rate: Rate(rate) }.offsets(Some(20_001), None, rng());
        let gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0);
        // Exp(50): mean 0.02 s, variance 0.0004 s². With 20,000 gaps the standard error of
        // the mean is 0.7 % and of the variance about 1.4 %: allow five of them.
        assert!((mean / 0.02 - 1.0).abs() < 0.035, "mean {mean}");
        assert!((var / 0.0004 - 1.0).abs() < 0.07, "variance {var}");
        assert_eq!(
            offsets,
            ArrivalConfig::Poisson { rate: Rate(rate) }.offsets(Some(20_001), None, rng())
        );
    }

    #[test]
    fn gamma_with_burstiness_one_is_poisson_and_below_one_is_burstier() {
        let cv = |burstiness: f64| {
            let offsets = ArrivalConfig::Gamma {
                rate: Rate(10.0),
                burstiness: Scale(burstiness),
            }
            .offsets(Some(20_001), None, rng());
            let gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt();
            assert!((mean / 0.1 - 1.0).abs() < 0.05, "mean {mean}");
            sd / mean
        };
        // The coefficient of variation of gamma gaps is 1/√shape.
        assert!((cv(1.0) - 1.0).abs() < 0.05);
        assert!((cv(0.25) - 2.0).abs() < 0.15);
        assert!((cv(4.0) - 0.5).abs() < 0.05);
    }

    #[test]
    fn bursts_and_batch() {
        let bursts = ArrivalConfig::Bursts {
            size: RequestCount(3),
            interval_s: Seconds(2.0),
        };
        assert_eq!(
            bursts.offsets(Some(7), None, rng()),
            vec![0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 4.0]
        );
        assert_eq!(
            ArrivalConfig::Batch.offsets(Some(3), None, rng()),
            vec![0.0; 3]
        );
    }
}
