//! Random distributions for latencies and token counts, written in a scenario as a bare
//! number (a constant) or a table tagged with `dist`.
//!
//! Validation happens while deserializing so that a bad value is reported with the
//! file, line, column and key it came from (see [`super::ScenarioError`]).

use super::values::{limits, shown};
use rand::Rng;
use rand_distr::{Distribution as _, LogNormal, Normal};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// z-score of the 99th percentile of the standard normal distribution; turns a
/// (median, p99) pair into the lognormal's sigma.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A non-negative random quantity. Samples are clamped at zero: a normal distribution
/// with a large spread can draw negative values, and a negative latency or token count
/// means nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
/// Written `{ dist = "…", … }`, read through [`super::tagged`].
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Distribution {
    Constant {
        value: f64,
    },
    /// Uniform over `[min, max]`.
    Uniform {
        min: f64,
        max: f64,
    },
    Normal {
        mean: f64,
        stddev: f64,
    },
    /// Lognormal given its median and 99th percentile: the long right tail real
    /// latencies have, described by the two numbers people actually know.
    Lognormal {
        median: f64,
        p99: f64,
    },
}

impl Distribution {
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = match *self {
            Distribution::Constant { value } => value,
            Distribution::Uniform { min, max } if min == max => min,
            Distribution::Uniform { min, max } => rng.random_range(min..=max),
            Distribution::Normal { mean, stddev } => Normal::new(mean, stddev)
                .map(|n| n.sample(rng))
                .unwrap_or(mean),
            Distribution::Lognormal { median, p99 } => {
                let sigma = (p99.ln() - median.ln()) / Z_P99;
                LogNormal::new(median.ln(), sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(median)
            }
        };
        x.max(0.0)
    }

    /// The smallest value a sample can take (after clamping at zero).
    pub fn lower_bound(&self) -> f64 {
        match *self {
            Distribution::Constant { value } => value,
            Distribution::Uniform { min, .. } => min,
            Distribution::Normal { stddev: 0.0, mean } => mean,
            Distribution::Normal { .. } | Distribution::Lognormal { .. } => 0.0,
        }
    }

    /// A typical value (mean or median), used for estimates and messages.
    pub fn typical(&self) -> f64 {
        match *self {
            Distribution::Constant { value } => value,
            Distribution::Uniform { min, max } => (min + max) / 2.0,
            Distribution::Normal { mean, .. } => mean,
            Distribution::Lognormal { median, .. } => median,
        }
    }

    /// Checks the parameters; every one must lie in `[0, max]`.
    fn validate(&self, max: f64) -> Result<(), String> {
        let finite_non_negative = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`{name}` must be a number from 0 to {max}, got {}",
                    shown(v)
                ))
            }
        };
        match *self {
            Distribution::Constant { value } => finite_non_negative("value", value),
            Distribution::Uniform { min, max } => {
                finite_non_negative("min", min)?;
                finite_non_negative("max", max)?;
                if min > max {
                    return Err(format!("`min` ({min}) must not exceed `max` ({max})"));
                }
                Ok(())
            }
            Distribution::Normal { mean, stddev } => {
                finite_non_negative("mean", mean)?;
                finite_non_negative("stddev", stddev)
            }
            Distribution::Lognormal { median, p99 } => {
                finite_non_negative("median", median)?;
                finite_non_negative("p99", p99)?;
                if median <= 0.0 {
                    return Err("`median` must be greater than 0".into());
                }
                if p99 < median {
                    return Err(format!(
                        "`p99` ({p99}) must be at least `median` ({median})"
                    ));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Distribution::Constant { value } => write!(f, "{}", shown(value)),
            Distribution::Uniform { min, max } => {
                write!(f, "uniform({}..{})", shown(min), shown(max))
            }
            Distribution::Normal { mean, stddev } => {
                write!(f, "normal(mean {}, sd {})", shown(mean), shown(stddev))
            }
            Distribution::Lognormal { median, p99 } => {
                write!(f, "lognormal(median {}, p99 {})", shown(median), shown(p99))
            }
        }
    }
}

/// Parses `200` or `{ dist = "…", … }`, then validates the parameters against `max`.
fn deserialize_distribution<'de, D: Deserializer<'de>>(
    d: D,
    max: f64,
) -> Result<Distribution, D::Error> {
    struct DistVisitor;
    impl<'de> Visitor<'de> for DistVisitor {
        type Value = Distribution;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(
                "a number, or a table such as { dist = \"uniform\", min = 1, max = 9 } \
                 (dist: constant, uniform, normal, lognormal)",
            )
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Distribution, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Distribution, E> {
            self.visit_f64(v as f64)
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Distribution, E> {
            Ok(Distribution::Constant { value })
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Distribution, A::Error> {
            super::tagged::read(de::value::MapAccessDeserializer::new(map), "dist")
        }
    }
    let dist = d.deserialize_any(DistVisitor)?;
    dist.validate(max).map_err(de::Error::custom)?;
    Ok(dist)
}

/// A latency in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MillisDistribution(pub Distribution);

impl<'de> Deserialize<'de> for MillisDistribution {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_distribution(d, MAX_MILLIS).map(MillisDistribution)
    }
}

/// The longest latency a distribution may give, in milliseconds.
const MAX_MILLIS: f64 = limits::MAX_SECONDS * 1000.0;

impl MillisDistribution {
    /// A draw; a tail beyond the parameters' range is cut at [`MAX_MILLIS`].
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.0.sample(rng).min(MAX_MILLIS) / 1000.0)
    }
}

/// A token count: samples are rounded and at least 1, so the distribution must not be
/// centred below 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TokenDistribution(pub Distribution);

impl<'de> Deserialize<'de> for TokenDistribution {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let dist = deserialize_distribution(d, limits::MAX_TOKENS)?;
        let least = match dist {
            Distribution::Normal { mean, .. } => mean,
            Distribution::Lognormal { median, .. } => median,
            _ => dist.lower_bound(),
        };
        if least < 1.0 {
            return Err(de::Error::custom(format!(
                "a token count must be at least 1, but {dist} allows {}",
                shown(least)
            )));
        }
        Ok(TokenDistribution(dist))
    }
}

impl TokenDistribution {
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        self.0.sample(rng).round().clamp(1.0, limits::MAX_TOKENS) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn parse_tokens(src: &str) -> Result<TokenDistribution, String> {
        #[derive(Deserialize)]
        struct W {
            #[allow(dead_code)]
            x: TokenDistribution,
        }
        toml::from_str::<W>(&format!("x = {src}"))
            .map(|w| w.x)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn bare_number_is_constant() {
        assert_eq!(
            parse_tokens("7").unwrap().0,
            Distribution::Constant { value: 7.0 }
        );
    }

    #[test]
    fn rejects_bad_parameters() {
        let cases = [
            (
                "{ dist = \"uniform\", min = 9, max = 2 }",
                "must not exceed",
            ),
            (
                "{ dist = \"lognormal\", median = 9, p99 = 2 }",
                "must be at least `median`",
            ),
            (
                "{ dist = \"normal\", mean = 9, stddev = -1 }",
                "`stddev` must be",
            ),
            ("{ dist = \"gamma\", k = 1 }", "unknown variant `gamma`"),
            (
                "{ dist = \"constant\", value = 1, extra = 2 }",
                "unknown field `extra`",
            ),
            ("0", "at least 1"),
            ("\"ten\"", "a number, or a table"),
        ];
        for (src, want) in cases {
            let err = parse_tokens(src).unwrap_err();
            assert!(err.contains(want), "{src}: {err}");
        }
    }

    #[test]
    fn lognormal_matches_median_and_p99() {
        let d = Distribution::Lognormal {
            median: 100.0,
            p99: 400.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut xs: Vec<f64> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[xs.len() / 2];
        let p99 = xs[xs.len() * 99 / 100];
        // 200k samples: the sample quantiles are within about 1 % of the true ones.
        assert!((median / 100.0 - 1.0).abs() < 0.03, "median {median}");
        assert!((p99 / 400.0 - 1.0).abs() < 0.05, "p99 {p99}");
    }

    #[test]
    fn samples_are_never_negative_and_tokens_at_least_one() {
        let d = TokenDistribution(Distribution::Normal {
            mean: 1.0,
            stddev: 50.0,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!((0..10_000).all(|_| d.sample(&mut rng) >= 1));
    }
}
