//! The scenario file: what to send, where, and which dispatch strategies to compare.
//! The bottom layer of the pipeline: every other stage reads its types, and it imports
//! nothing from them.
//!
//! One file per section of the file format (`target`, `mock`, `workload`, `arrival`,
//! `client`, `retry`, `strategy`, `budget`, `slo`, `search`, `quota`; `distribution` for the distributions
//! they use), the checked value types in `values`, and here the whole file: parsing,
//! checks that span sections, and sweep expansion. Every check that can be made while
//! parsing is made there, so that each error carries the file, line, column and key path
//! of the offending value (`strategy[1].limit`; array indices count from 0) and says
//! what is expected. Files the scenario names (prompts, traces) are read by the
//! workload stage.

mod arrival;
mod budget;
mod client;
mod distribution;
mod error;
mod external;
mod headers;
mod mock;
mod quota;
mod retry;
mod search;
mod slo;
mod strategy;
pub(crate) mod tagged;
mod target;
mod values;
mod workload;

pub use arrival::{ArrivalConfig, RampStage};
pub use budget::BudgetConfig;
pub use client::ClientConfig;
pub use distribution::{Distribution, MillisDistribution, TokenDistribution};
pub use error::ScenarioError;
pub use external::ProgramCommand;
pub use headers::{HeaderSource, RequestHeaders};
pub use mock::{
    CacheConfig, CacheMode, CapacityConfig, FaultConfig, MockConfig, OtpmMode, QueueFullStatus,
    RateLimitConfig, StallConfig,
};
pub use quota::QuotaConfig;
pub use retry::RetryConfig;
pub use search::{NEAR_BOUNDARY, SearchConfig, SearchDimension};
pub use slo::SloConfig;
pub use strategy::{
    ADAPTIVE_CEILING, ADAPTIVE_INITIAL_LIMIT, AdaptiveSignal, HttpLibrary, Limit, LimitRule,
    RATE_HEADROOM, RuntimeKind, StrategyConfig, StrategyKind,
};
pub use target::{CaFile, OpenAiApi, Price, Target};
pub use values::{
    BaseUrl, ByteCount, Concurrency, CopyCount, Count, CpuMicros, EnvName, Fraction, Headroom,
    Millis, Name, NonNegative, Offset, Positive, Precision, QueueLength, Rate, RequestCount, Scale,
    Seconds, Share, ThreadCount, TokenCount, WarmMib, limits,
};
pub use workload::WorkloadConfig;

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Name,
    #[serde(default)]
    pub description: String,
    #[serde(deserialize_with = "tagged::kind")]
    pub target: Target,
    #[serde(default)]
    pub mock: MockConfig,
    #[serde(rename = "workload")]
    workload_entry: toml::Spanned<WorkloadConfig>,
    #[serde(default)]
    pub client: ClientConfig,
    #[serde(default, deserialize_with = "tagged::policy")]
    pub retry: RetryConfig,
    #[serde(default)]
    pub slo: SloConfig,
    #[serde(default)]
    pub budget: BudgetConfig,
    /// `[search]`: what `llmbench capacity` searches (absent: it cannot run).
    pub search: Option<toml::Spanned<SearchConfig>>,
    /// `[quota]`: what `llmbench quota` plans against.
    pub quota: Option<toml::Spanned<QuotaConfig>>,
    #[serde(rename = "strategy", default)]
    pub strategies: Vec<toml::Spanned<StrategyConfig>>,
    /// The folder relative paths in the scenario (prompts, traces) are taken from.
    #[serde(skip)]
    folder: PathBuf,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = read_text(path)?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Scenario::parse_in(&src, &path.display().to_string(), folder)
    }

    /// Parses and validates scenario text; `origin` names it in errors, relative paths
    /// in it are taken from the current folder.
    pub fn parse(src: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_in(src, origin, Path::new("."))
    }

    /// As [`Scenario::parse`], with relative paths taken from `folder`.
    pub fn parse_in(src: &str, origin: &str, folder: &Path) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = parse_toml(src, origin)?;
        let entries = std::mem::take(&mut scenario.strategies);
        scenario.strategies = entries
            .into_iter()
            .flat_map(StrategyConfig::sweep)
            .collect();
        scenario.check_strategies(src, origin)?;
        let workload = &scenario.workload_entry;
        workload.get_ref().check().map_err(|message| {
            ScenarioError::invalid(
                origin,
                src,
                Some(workload.span()),
                "workload".into(),
                &message,
            )
        })?;
        if scenario.budget.max_cost.is_some() && scenario.target.price().is_none() {
            return Err(ScenarioError::invalid(
                origin,
                src,
                None,
                "budget.max_cost".into(),
                "needs prices to count cost: set [target.price] (input_per_million, output_per_million)",
            ));
        }
        scenario.check_planning(src, origin)?;
        scenario.target.check_ca_file(folder).map_err(|message| {
            ScenarioError::invalid(origin, src, None, "target.ca_file".into(), &message)
        })?;
        scenario.folder = folder.to_path_buf();
        Ok(scenario)
    }

    fn check_strategies(&self, src: &str, origin: &str) -> Result<(), ScenarioError> {
        if self.strategies.is_empty() {
            return Err(ScenarioError::invalid(
                origin,
                src,
                None,
                "strategy".into(),
                "no strategies to run: add at least one [[strategy]] table, e.g. kind = \"serial\"",
            ));
        }
        let mut seen = HashSet::new();
        // Entries of one sweep share their table's span; `i` counts tables, as written.
        let mut i = 0;
        for (n, entry) in self.strategies.iter().enumerate() {
            if n > 0 && self.strategies[n - 1].span() != entry.span() {
                i += 1;
            }
            let at = |key: &str, message: &str| {
                ScenarioError::invalid(
                    origin,
                    src,
                    Some(entry.span()),
                    format!("strategy[{i}]{key}"),
                    message,
                )
            };
            let config = entry.get_ref();
            config
                .check()
                .map_err(|(key, message)| at(&key, &message))?;
            let label = config.label();
            if !seen.insert(label.clone()) {
                return Err(at(
                    ".label",
                    &format!(
                        "label \"{label}\" is used by an earlier strategy; give this one a distinct `label`"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks `[search]` and `[quota]`, each where it is written.
    fn check_planning(&self, src: &str, origin: &str) -> Result<(), ScenarioError> {
        let at = |section: &str, span, message: String| {
            ScenarioError::invalid(origin, src, Some(span), section.into(), &message)
        };
        if let Some(search) = &self.search {
            search
                .get_ref()
                .check()
                .map_err(|m| at("search", search.span(), m))?;
        }
        if let Some(quota) = &self.quota {
            quota
                .get_ref()
                .check()
                .map_err(|m| at("quota", quota.span(), m))?;
        }
        Ok(())
    }

    /// The `[search]` section, if any.
    pub fn search(&self) -> Option<&SearchConfig> {
        self.search.as_ref().map(|s| s.get_ref())
    }

    /// The `[quota]` section, if any.
    pub fn quota(&self) -> Option<&QuotaConfig> {
        self.quota.as_ref().map(|s| s.get_ref())
    }

    /// Keeps only the strategies with these labels (all when `labels` is empty), in the
    /// scenario's order: `llmbench run --strategy` re-runs part of a comparison.
    pub fn keep_strategies(&mut self, labels: &[String]) -> Result<(), String> {
        let known: Vec<String> = self.strategies().map(|s| s.label()).collect();
        if let Some(unknown) = labels.iter().find(|l| !known.contains(l)) {
            return Err(format!(
                "no strategy is labelled \"{unknown}\"; the scenario's strategies are: {}",
                known.join(", ")
            ));
        }
        if !labels.is_empty() {
            self.strategies
                .retain(|s| labels.contains(&s.get_ref().label()));
        }
        Ok(())
    }

    /// The strategy entries without their source positions.
    pub fn strategies(&self) -> impl Iterator<Item = &StrategyConfig> + Clone {
        self.strategies.iter().map(|s| s.get_ref())
    }

    pub fn workload(&self) -> &WorkloadConfig {
        self.workload_entry.get_ref()
    }

    /// The folder relative paths in the scenario are taken from: the scenario file's.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Seed of the mock's draws.
    pub fn mock_seed(&self) -> u64 {
        self.mock.seed.unwrap_or(self.workload().seed)
    }
}

/// Deserializes TOML into `T`, reporting errors with position, key path and message.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    src: &str,
    origin: &str,
) -> Result<T, ScenarioError> {
    let invalid = |e: toml::de::Error, key: String| {
        ScenarioError::invalid(origin, src, e.span(), key, &error::plain(e.message()))
    };
    let de = toml::Deserializer::parse(src).map_err(|e| invalid(e, String::new()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // `toml::Spanned` shows up in the path as a private field; users never wrote it.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        invalid(e.into_inner(), key)
    })
}

/// A scenario file's text; bytes that are not UTF-8 are an error with their position.
fn read_text(path: &Path) -> Result<String, ScenarioError> {
    let read = |source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let text = String::from_utf8_lossy(bytes);
        let byte = bytes[at];
        let valid = String::from_utf8_lossy(&bytes[..at]).into_owned();
        ScenarioError::invalid(
            &path.display().to_string(),
            &text,
            Some(valid.len()..valid.len() + char::REPLACEMENT_CHARACTER.len_utf8()),
            String::new(),
            &format!("byte 0x{byte:02x} is not UTF-8: save the file as UTF-8"),
        )
    })
}

/// The `[mock]` section of a scenario file (other sections are not read), and the seed
/// the mock draws from: `mock.seed`, else `workload.seed`, else 0.
pub fn load_mock_config(path: &Path) -> Result<(MockConfig, u64), ScenarioError> {
    #[derive(Deserialize)]
    struct MockOnly {
        #[serde(default)]
        mock: MockConfig,
        workload: Option<SeedOnly>,
    }
    #[derive(Deserialize)]
    struct SeedOnly {
        seed: Option<u64>,
    }
    let src = read_text(path)?;
    let parsed: MockOnly = parse_toml(&src, &path.display().to_string())?;
    let seed = parsed
        .mock
        .seed
        .or(parsed.workload.and_then(|w| w.seed))
        .unwrap_or(0);
    Ok((parsed.mock, seed))
}

#[cfg(test)]
mod tests;
