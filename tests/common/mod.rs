//! Helpers shared by the integration tests.
#![allow(dead_code)]

use llmbench::recorder::RequestRecord;
use llmbench::result::{RunResult, StrategyResult};
use llmbench::runner::{self, RunOptions, RunOutcome};
use llmbench::scenario::Scenario;
use std::collections::BTreeMap;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Runs scenario text (relative paths from `folder`) into `folder`, without reports.
pub async fn run_in(src: &str, folder: &Path, cancel: CancellationToken) -> RunOutcome {
    let file = folder.join("scenario.toml");
    std::fs::write(&file, src).unwrap();
    let scenario = Scenario::parse_in(src, "test", folder).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        output: folder.join("results"),
        quiet: true,
        report: false,
        shard: None,
        start_at: None,
    };
    let items = llmbench::workload::load(&scenario).unwrap_or_else(|e| panic!("{e}"));
    runner::run(&scenario, items, &file, &options, cancel)
        .await
        .unwrap()
}

/// What a run measured, with its records read back from its `requests.csv` (the run
/// itself keeps none in memory).
pub struct Measured {
    pub result: RunResult,
    records: BTreeMap<String, Vec<RequestRecord>>,
}

impl std::ops::Deref for Measured {
    type Target = RunResult;

    fn deref(&self) -> &RunResult {
        &self.result
    }
}

impl Measured {
    fn read(outcome: RunOutcome) -> Measured {
        Measured {
            records: llmbench::report::read_records(&outcome.dir).unwrap(),
            result: outcome.result,
        }
    }

    /// The records of strategy `s`, in index order.
    pub fn records_of(&self, s: &StrategyResult) -> &[RequestRecord] {
        self.records.get(&s.label).map_or(&[], Vec::as_slice)
    }
}

/// The records of strategy `strategy` (by position) of a run, in index order.
pub fn records(outcome: &RunOutcome, strategy: usize) -> Vec<RequestRecord> {
    let label = &outcome.result.strategies[strategy].label;
    let mut all = llmbench::report::read_records(&outcome.dir).unwrap();
    all.remove(label).unwrap_or_default()
}

/// Runs scenario text in a temporary folder and returns what was measured.
pub async fn run(src: &str) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    Measured::read(run_in(src, dir.path(), CancellationToken::new()).await)
}

/// Runs the `llmbench` binary with `args` and extra environment variables.
pub fn llmbench(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A scenario run by the binary (`llmbench run FILE -o DIR`) in a temporary folder, with
/// extra environment variables: its output, and the folder (results under `out/`).
pub fn run_binary(src: &str, env: &[(&str, &str)]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, src).unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "run",
        file.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ];
    (llmbench(&args, env), dir)
}

/// The results folder of a run by [`run_binary`] in `dir`, and its summary.json.
pub fn summary_of(dir: &tempfile::TempDir) -> (std::path::PathBuf, serde_json::Value) {
    let run = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(run.join("summary.json")).unwrap();
    (run, serde_json::from_str(&text).unwrap())
}

/// An HTTP client for tests (the TLS provider installed first, as reqwest requires).
pub fn http() -> reqwest::Client {
    llmbench::client::install_tls_provider();
    reqwest::Client::new()
}

/// The text of the mock's `GET /metrics` at `base_url`.
pub async fn metrics_text(base_url: &str) -> String {
    http()
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Each fault the mock injects on every API, with the class a client reads it as.
pub const FAULT_CLASSES: [(&str, llmbench::recorder::ErrorClass); 6] = {
    use llmbench::recorder::ErrorClass::*;
    [
        ("error_429", RateLimited),
        ("error_503", ServerError),
        ("disconnect", Protocol),
        ("error_event", Protocol),
        ("malformed", Protocol),
        ("stall", Timeout),
    ]
};

/// Searches every file below `dir` (at least summary, requests, scenario, reports and
/// charts) for `secret`.
pub fn assert_written_nowhere(dir: &std::path::Path, secret: &str) {
    let mut files = vec![dir.to_path_buf()];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret found in {}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} files were written");
}
