//! Runtimes and HTTP clients: every combination does the same work with the same
//! counts, reads faults the same way, reuses connections, and refuses combinations that
//! make no sense. Where io_uring is unavailable, its strategies are skipped with the
//! reason and the run goes on.

mod common;

use llmbench::recorder::{ErrorClass, Outcome};
use llmbench::result::RunResult;
use llmbench::runtime::DISABLE_IO_URING_ENV;
use llmbench::scenario::RuntimeKind;
use llmbench::scenario::Scenario;
use std::process::Command;
use std::time::Duration;

/// Every runtime with each HTTP client it can use, as `[[strategy]]` tables.
const COMBINATIONS: &str = r#"
[[strategy]]
kind = "semaphore"
limit = 4
workers = 2
client = "reqwest"
label = "multi-reqwest"
[[strategy]]
kind = "semaphore"
limit = 4
workers = 2
client = "hyper"
label = "multi-hyper"
[[strategy]]
kind = "semaphore"
limit = 4
runtime = "tokio-current"
client = "reqwest"
label = "current-reqwest"
[[strategy]]
kind = "semaphore"
limit = 4
runtime = "tokio-current"
client = "hyper"
label = "current-hyper"
[[strategy]]
kind = "semaphore"
limit = 4
runtime = "tokio-uring"
label = "uring-hyper"
"#;

fn scenario(workload: &str, strategies: &str) -> String {
    format!(
        "name = \"runtimes\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 5\nitl_ms = 1\n\
         [client]\nidle_timeout_s = 0.3\n[workload]\n{workload}\n{strategies}"
    )
}

/// The labels that ran: all of them, or all but the io_uring one where io_uring is
/// unavailable, which must then be reported as skipped with its reason.
fn check_ran_or_skipped(run: &RunResult) -> Vec<&str> {
    let ran: Vec<&str> = run.strategies.iter().map(|s| s.label.as_str()).collect();
    match RuntimeKind::TokioUring.unavailable() {
        None => assert!(run.skipped.is_empty(), "{:?}", run.skipped),
        Some(reason) => {
            assert_eq!(run.skipped.len(), 1);
            assert_eq!(run.skipped[0].label, "uring-hyper");
            assert_eq!(run.skipped[0].reason, reason);
        }
    }
    ran
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_and_client_completes_the_same_work_with_identical_counts() {
    for stream in [true, false] {
        let workload =
            format!("requests = 12\nmax_tokens = 4\ncpu_work_us = 200\nstream = {stream}");
        let run = common::run(&scenario(&workload, COMBINATIONS)).await;
        let ran = check_ran_or_skipped(&run);
        assert!(ran.len() >= 4, "{ran:?}");
        for s in &run.strategies {
            let itl_samples = if stream { 12 * 3 } else { 0 };
            assert_eq!(
                (s.counts().ok, s.output_tokens(), s.tally.itl.len()),
                (12, 48, itl_samples),
                "{} (stream = {stream})",
                s.label
            );
            let mock = s.mock.unwrap();
            assert_eq!(mock.requests, 12, "{}", s.label);
            // Four in flight at a time, each connection reused once its response is read.
            // A pool gets a connection back only after the response is consumed, on its
            // own task, so a request sent at that moment may open one more (seen with
            // reqwest under load): bounded well below one connection per request.
            assert!(
                (1..=8).contains(&mock.connections),
                "{}: {} connections for 4 in flight",
                s.label,
                mock.connections
            );
        }
        let described: Vec<(&str, &str)> = run
            .strategies
            .iter()
            .map(|s| (s.runtime.as_str(), s.client))
            .collect();
        assert_eq!(
            &described[..4],
            [
                ("tokio-multi (2 workers)", "reqwest"),
                ("tokio-multi (2 workers)", "hyper"),
                ("tokio-current (1 thread)", "reqwest"),
                ("tokio-current (1 thread)", "hyper"),
            ]
        );
        if ran.len() == 5 {
            assert_eq!(described[4], ("tokio-uring (1 thread)", "hyper"));
        }
    }
}

/// Each runtime's probe is calibrated before the run, and its estimated share is taken
/// out of the client's CPU per request: a strategy that mostly waits (eight requests of
/// about 200 ms, four at a time, the probe waking its runtime about 400 times) would
/// otherwise show the probe as its cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_own_cpu_is_measured_on_every_runtime_and_taken_out_of_the_clients() {
    let src = scenario("requests = 8\nmax_tokens = 2", COMBINATIONS)
        .replace("ttft_ms = 5\n", "ttft_ms = 200\n");
    let run = common::run(&src).await;
    check_ran_or_skipped(&run);
    for s in &run.strategies {
        let health = s.runtime_health.as_ref().unwrap();
        let per_wake = health.probe_idle_cost.expect("calibrated before the run");
        assert!(
            per_wake > Duration::ZERO && per_wake < Duration::from_millis(1),
            "{}: {per_wake:?} a wake-up",
            s.label
        );
        let (raw, probe) = (s.client_cpu.unwrap(), health.probe_cpu().unwrap());
        assert!(probe <= raw, "{}: probe {probe:?} of {raw:?}", s.label);
        // The runtime idled most of the time (well under half its capacity used), so
        // most of its wake-ups are counted at their idle cost.
        let every_wake = per_wake * health.lag.len() as u32;
        assert!(
            probe >= every_wake / 2 && probe <= every_wake * 2,
            "{}: {probe:?} against {every_wake:?} for every wake-up at idle cost; {health:?}",
            s.label
        );
        // What the table shows is the strategy's own share.
        let summary = llmbench::summary::StrategySummary::from_result(s);
        let raw_ms = raw.as_secs_f64() * 1e3 / 8.0;
        let shown = summary.client_cpu_per_request_ms().unwrap();
        let own_ms = raw_ms - probe.as_secs_f64() * 1e3 / 8.0;
        assert!(
            (shown - own_ms).abs() < 1e-6,
            "{}: {shown} against {own_ms}",
            s.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_classifies_every_fault_alike() {
    for (fault, class) in common::FAULT_CLASSES {
        let src = scenario("requests = 2\nmax_tokens = 4", COMBINATIONS).replace(
            "itl_ms = 1\n",
            &format!("itl_ms = 1\nfaults = {{ {fault} = 1.0, stall_s = 3 }}\n"),
        );
        let run = common::run(&src).await;
        check_ran_or_skipped(&run);
        for s in &run.strategies {
            let outcomes: Vec<Outcome> = run.records_of(s).iter().map(|r| r.outcome).collect();
            assert_eq!(
                outcomes,
                vec![Outcome::Failed(class); 2],
                "{fault} on {}: {:?}",
                s.label,
                run.records_of(s)[0].error
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyper_clients_report_refused_connections_as_connect_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let src = format!(
        "name = \"c\"\n[target]\nkind = \"openai\"\nbase_url = \"http://{closed}\"\nmodel = \"m\"\n\
         [workload]\nrequests = 1\nmax_tokens = 1\n{COMBINATIONS}"
    );
    let run = common::run(&src).await;
    check_ran_or_skipped(&run);
    for s in &run.strategies {
        let record = &run.records_of(s)[0];
        assert_eq!(
            record.outcome,
            Outcome::Failed(ErrorClass::Connect),
            "{}: {:?}",
            s.label,
            record.error
        );
        let error = record.error.as_deref().unwrap().to_lowercase();
        assert!(error.contains("refused"), "{}: {error}", s.label);
    }
}

#[test]
fn combinations_that_make_no_sense_are_refused_with_the_reason() {
    let base = |strategy: &str, target: &str| {
        format!(
            "name = \"r\"\n[target]\n{target}\n[workload]\nrequests = 1\n[[strategy]]\nkind = \"serial\"\n{strategy}"
        )
    };
    let mock = "kind = \"mock\"";
    let https = "kind = \"openai\"\nbase_url = \"https://api.example.com/v1\"\nmodel = \"m\"";
    let cases = [
        (
            "runtime = \"tokio-current\"\nworkers = 3",
            mock,
            "`workers` applies to runtime \"tokio-multi\" only: runtime \"tokio-current\" has exactly one thread",
        ),
        (
            "runtime = \"tokio-uring\"\nworkers = 2",
            mock,
            "runtime \"tokio-uring\" has exactly one thread",
        ),
        (
            "runtime = \"tokio-uring\"\nclient = \"reqwest\"",
            mock,
            "reqwest does its I/O through tokio's epoll sockets",
        ),
        ("client = \"curl\"", mock, "unknown variant `curl`"),
    ];
    for (strategy, target, expected) in cases {
        let err = Scenario::parse(&base(strategy, target), "r.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{strategy}: {err}");
    }
    for fine in [
        "runtime = \"tokio-uring\"\nclient = \"hyper\"",
        "client = \"reqwest\"",
    ] {
        Scenario::parse(&base(fine, mock), "r.toml").unwrap();
    }
    // Both clients speak TLS and HTTP/2 on every runtime that may use them.
    for fine in [
        "client = \"reqwest\"",
        "client = \"reqwest\"\nhttp2 = true",
        "client = \"hyper\"",
        "runtime = \"tokio-uring\"",
        "runtime = \"tokio-uring\"\nhttp2 = true",
    ] {
        Scenario::parse(&base(fine, https), "r.toml").unwrap();
        Scenario::parse(&base(fine, mock), "r.toml").unwrap();
    }
}

#[test]
fn without_io_uring_its_strategies_are_skipped_with_the_reason_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let src = scenario(
        "requests = 3\nmax_tokens = 2",
        "[[strategy]]\nkind = \"serial\"\nruntime = \"tokio-uring\"\n[[strategy]]\nkind = \"serial\"\nlabel = \"after\"",
    );
    std::fs::write(&file, src).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(["run", file.to_str().unwrap(), "--quiet", "--output"])
        .arg(dir.path().join("results"))
        .env(DISABLE_IO_URING_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let reason = format!("io_uring is turned off by {DISABLE_IO_URING_ENV}");
    assert!(
        stderr.contains(&format!("skipped serial: {reason}")),
        "{stderr}"
    );
    let results = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["skipped"][0]["label"], "serial");
    assert_eq!(summary["skipped"][0]["reason"], reason.as_str());
    assert_eq!(summary["strategies"][0]["label"], "after");
    assert_eq!(summary["strategies"][0]["requests"]["ok"], 3);
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(
        report.contains(&format!(
            "Skipped serial (tokio-uring (1 thread)): {reason}."
        )),
        "{report}"
    );
}
