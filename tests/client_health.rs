//! The client's own health: a runtime deliberately blocked by inline CPU work is
//! flagged as the bottleneck on the console, in summary.json and in the report; a
//! normal run is not; and the lag probe takes one sample per millisecond on every
//! runtime. Loopback only, a few seconds each.

mod common;

use llmbench::runtime::PROBE_PERIOD;
use llmbench::scenario::RuntimeKind;

/// 20 ms of CPU inline after each response on the one thread of a current-thread
/// runtime, 8 streams at a time: every response stalls the other seven.
const BLOCKED: &str = r#"
name = "blocked"
[target]
kind = "mock"
[mock]
ttft_ms = 20
itl_ms = 2
[workload]
requests = 24
max_tokens = 8
cpu_work_us = 20000
[[strategy]]
kind = "semaphore"
limit = 8
runtime = "tokio-current"
label = "blocked"
"#;

/// Like scenarios/smoke.toml, without its rate limit: short streams, nothing on the
/// runtime but the client.
const NORMAL: &str = r#"
name = "normal"
[target]
kind = "mock"
[mock]
ttft_ms = { dist = "uniform", min = 20, max = 60 }
itl_ms = { dist = "lognormal", median = 4, p99 = 12 }
[workload]
requests = 20
seed = 7
max_tokens = { dist = "uniform", min = 8, max = 24 }
[[strategy]]
kind = "serial"
[[strategy]]
kind = "semaphore"
limit = 4
"#;

const WARNING: &str = "the client, not the server, was the bottleneck";

/// The two runs through the binary take turns: the blocked runtime's CPU work would
/// otherwise load the cores under the normal run, which then rightly reports lag.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_runtime_blocked_by_inline_cpu_work_is_flagged_as_the_bottleneck() {
    let _alone = one_at_a_time();
    let (out, dir) = common::run_binary(BLOCKED, &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("runtime lag p99 (ms)"), "{stdout}");
    assert!(stdout.contains("client CPU utilisation"), "{stdout}");
    let warning = format!("warning: blocked: {WARNING} (runtime lag p99 ");
    assert!(stderr.contains(&warning), "{stderr}");
    let (run, summary) = common::summary_of(&dir);
    let health = &summary["strategies"][0]["client_health"];
    assert_eq!(health["client_bound"], true, "{health}");
    assert!(health["lag_ms"]["p99"].as_f64().unwrap() > 5.0, "{health}");
    let reason = health["reason"].as_str().unwrap();
    assert!(reason.starts_with("runtime lag p99 "), "{reason}");
    assert_eq!(health["threads"], 1);
    // hyper, the default client, counts its own connections.
    assert_eq!(health["connections_from"], "client_peak");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains(&format!(
            "**blocked** was bound by the client, not the server ({reason}): its latencies are the client's, not the server's."
        )),
        "{report}"
    );
}

/// A normal run is not flagged. The machine running the tests is shared, and a client
/// thread the OS keeps off its core for several milliseconds is a real client-side
/// stall that the warning rightly reports; so a flagged run is repeated, and the test
/// fails only if three in a row are flagged.
#[test]
fn a_normal_run_raises_no_warning() {
    let _alone = one_at_a_time();
    let mut flagged = Vec::new();
    for _ in 0..3 {
        let (out, dir) = common::run_binary(NORMAL, &[]);
        assert_eq!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !stderr.contains(WARNING) {
            let (_, summary) = common::summary_of(&dir);
            for s in summary["strategies"].as_array().unwrap() {
                let health = &s["client_health"];
                assert_eq!(health["client_bound"], false, "{health}");
                assert!(health["reason"].is_null(), "{health}");
            }
            return;
        }
        flagged.push(stderr);
    }
    panic!("three normal runs flagged: {flagged:#?}");
}

/// The probe wakes on a fixed 1 ms schedule and counts the wake-ups a stall delayed
/// when it ends, so it holds one sample per millisecond of the strategy on every
/// runtime. Tolerance: against its own span, 10 % and 5 samples (the span is read
/// beside the probe, a few microseconds from its own start and end); against the
/// makespan, 20 % and 50 ms, since the makespan also counts building the runtime and
/// starting its threads, which on a loaded machine take milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_samples_once_a_millisecond_on_every_runtime() {
    let strategies = r#"
[[strategy]]
kind = "semaphore"
limit = 4
workers = 2
label = "multi"
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
label = "uring"
"#;
    let src = format!(
        "name = \"probe\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 50\nitl_ms = 5\n\
         [workload]\nrequests = 12\nmax_tokens = 20\n{strategies}"
    );
    let run = common::run(&src).await;
    let expected = if RuntimeKind::TokioUring.unavailable().is_some() {
        2
    } else {
        3
    };
    assert_eq!(run.strategies.len(), expected);
    for s in &run.strategies {
        let health = s.runtime_health.as_ref().unwrap();
        let samples = health.lag.len() as f64;
        let per_ms = |span: std::time::Duration| span.as_secs_f64() / PROBE_PERIOD.as_secs_f64();
        let own = per_ms(health.wall);
        assert!(
            (samples - own).abs() <= own * 0.1 + 5.0,
            "{}: {health:?}",
            s.label
        );
        let makespan = per_ms(s.makespan());
        assert!(
            (samples - makespan).abs() <= makespan * 0.2 + 50.0,
            "{}: {samples} samples, makespan {makespan} ms",
            s.label
        );
        let (connections, from) = s.connections().unwrap();
        match s.client {
            "hyper" => {
                assert_eq!(from.as_str(), "client_peak", "{}", s.label);
                assert!((1..=4).contains(&connections), "{}: {connections}", s.label);
            }
            _ => assert_eq!(from.as_str(), "mock_accepted", "{}", s.label),
        }
    }
}
