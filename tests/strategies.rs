//! Known-truth checks: with constant mock latency L and no limit, the makespan of each
//! strategy is fixed by arithmetic; with a rate limit, the counts are exact.

mod common;
use common::run;

use llmbench::metric::Metric;
use llmbench::recorder::Outcome;
use llmbench::result::RunResult;

use llmbench::scenario::Scenario;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const STRATEGIES: &str = r#"
[[strategy]]
kind = "serial"
[[strategy]]
kind = "join_all"
[[strategy]]
kind = "semaphore"
limit = 3
[[strategy]]
kind = "joinset"
limit = 3
"#;

/// 8 requests, each exactly L = 60 ms to the first token + 4 gaps of 10 ms = 100 ms.
fn constant_latency_scenario(stream: bool) -> String {
    format!(
        r#"
name = "known-truth"
[target]
kind = "mock"
[mock]
ttft_ms = 60
itl_ms = 10
threads = 2
[workload]
requests = 8
stream = {stream}
max_tokens = 5
{STRATEGIES}"#
    )
}

const L: Duration = Duration::from_millis(100);

/// Makespan `rounds · L`: never less (the mock's deadlines never fire early), and at
/// most 1.5× plus 150 ms more, a wide margin for a loaded CI machine running a debug
/// build that still keeps the strategies apart (join_all ≤ 300 ms < semaphore ≥ 300 ms).
fn assert_rounds(run: &RunResult, label: &str, rounds: u32) {
    let strategy = run.strategies.iter().find(|s| s.label == label).unwrap();
    let makespan = strategy.makespan();
    let expected = L * rounds;
    assert!(
        makespan >= expected && makespan <= expected * 3 / 2 + Duration::from_millis(150),
        "{label}: makespan {makespan:?}, expected about {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn makespans_follow_from_the_dispatch_rule() {
    let run = run(&constant_latency_scenario(true)).await;
    assert_rounds(&run, "serial", 8);
    assert_rounds(&run, "join_all", 1);
    assert_rounds(&run, "semaphore-3", 3); // ceil(8 / 3)
    assert_rounds(&run, "joinset-3", 3);
    for s in &run.strategies {
        let counts = s.counts();
        assert_eq!(
            (counts.total, counts.ok, counts.failed),
            (8, 8, 0),
            "{}",
            s.label
        );
        assert_eq!(s.output_tokens(), 8 * 5, "{}", s.label);
        // 4 gaps per stream are 4 ITL samples, and every request has a TTFT.
        assert_eq!(s.histogram(Metric::Itl).len(), 8 * 4, "{}", s.label);
        assert_eq!(s.histogram(Metric::Ttft).len(), 8, "{}", s.label);
        let ttft_p50 = s.histogram(Metric::Ttft).value_at_quantile(0.5);
        assert!(
            (60_000..90_000).contains(&ttft_p50),
            "{}: TTFT p50 {ttft_p50} µs",
            s.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_in_flight_matches_the_limit() {
    let run = run(&constant_latency_scenario(true)).await;
    let peak = |label: &str| {
        let s = run.strategies.iter().find(|s| s.label == label).unwrap();
        s.timeline().iter().map(|t| t.peak_in_flight).max().unwrap()
    };
    assert_eq!(peak("serial"), 1);
    assert_eq!(peak("join_all"), 8);
    assert_eq!(peak("semaphore-3"), 3);
    assert_eq!(peak("joinset-3"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_sweep_runs_one_strategy_per_limit() {
    let src = constant_latency_scenario(true).replace(
        STRATEGIES,
        "[[strategy]]\nkind = \"joinset\"\nlimit = [1, 2, 4]\n",
    );
    let run = run(&src).await;
    let runs: Vec<_> = run
        .strategies
        .iter()
        .map(|s| {
            let peak = s.timeline().iter().map(|t| t.peak_in_flight).max();
            (s.label.as_str(), s.counts().ok, peak.unwrap())
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("joinset-1", 8, 1),
            ("joinset-2", 8, 2),
            ("joinset-4", 8, 4)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_requests_have_e2e_but_no_token_timings() {
    let run = run(&constant_latency_scenario(false)).await;
    assert_rounds(&run, "serial", 8);
    assert_rounds(&run, "join_all", 1);
    for s in &run.strategies {
        assert_eq!(s.counts().ok, 8);
        assert_eq!(s.output_tokens(), 40);
        assert_eq!(s.histogram(Metric::E2e).len(), 8);
        assert!(s.histogram(Metric::Ttft).is_empty() && s.histogram(Metric::Itl).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_counts_are_exact_and_every_strategy_starts_with_a_full_bucket() {
    // 6 RPM refills one request per 10 s: within this run no refill can add a request,
    // so each strategy gets exactly the bucket's 6 and 4 × 429, however fast it is.
    let src = format!(
        r#"
name = "limited"
[target]
kind = "mock"
[mock]
ttft_ms = 5
itl_ms = 1
rate_limit = {{ rpm = 6 }}
[workload]
requests = 10
max_tokens = 3
{STRATEGIES}"#
    );
    let run = run(&src).await;
    for s in &run.strategies {
        let counts = s.counts();
        assert_eq!(
            (counts.ok, counts.rate_limited, counts.failed),
            (6, 4, 4),
            "{}",
            s.label
        );
        let mock = s.mock.unwrap();
        assert_eq!(
            (mock.requests, mock.admitted, mock.rate_limited),
            (10, 6, 4),
            "{}",
            s.label
        );
        assert!(
            run.records_of(s)
                .iter()
                .filter(|r| r.outcome != Outcome::Ok)
                .all(|r| r.status == Some(429)),
            "{}",
            s.label
        );
    }
    // Serial sends in order, so exactly the last four are refused.
    let serial = &run.strategies[0];
    let refused: Vec<u32> = run
        .records_of(serial)
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| r.index)
        .collect();
    assert_eq!(refused, [6, 7, 8, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_executes_the_same_work_items() {
    let src = format!(
        r#"
name = "same-work"
[target]
kind = "mock"
[mock]
ttft_ms = 2
itl_ms = 0
output_tokens = {{ dist = "uniform", min = 1, max = 30 }}
[workload]
requests = 30
seed = 99
prompt_tokens = {{ dist = "lognormal", median = 50, p99 = 400 }}
max_tokens = {{ dist = "uniform", min = 5, max = 25 }}
{STRATEGIES}"#
    );
    let run = run(&src).await;
    let work = |i: usize| {
        let mut rows: Vec<_> = run
            .records_of(&run.strategies[i])
            .iter()
            .map(|r| (r.index, r.prompt_tokens, r.max_tokens, r.output_tokens))
            .collect();
        rows.sort_unstable();
        rows
    };
    let first = work(0);
    assert_eq!(first.len(), 30);
    assert!(
        first.iter().any(|r| r.3 < r.2),
        "some completions stop before max_tokens"
    );
    for i in 1..run.strategies.len() {
        assert_eq!(
            work(i),
            first,
            "{} differs from serial",
            run.strategies[i].label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_saves_what_was_measured() {
    let src = constant_latency_scenario(true);
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        // Serial needs 800 ms: interrupt it in the middle.
        tokio::time::sleep(Duration::from_millis(350)).await;
        interrupt.cancel();
    });
    let outcome = common::run_in(&src, dir.path(), cancel).await;
    assert!(outcome.result.interrupted);
    assert_eq!(
        outcome.result.strategies.len(),
        1,
        "later strategies are skipped"
    );
    let counts = outcome.result.strategies[0].counts();
    assert_eq!(counts.total, 8);
    assert!(counts.ok >= 2 && counts.cancelled >= 1, "{counts:?}");
    assert_eq!(counts.ok + counts.cancelled, 8);

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let csv = std::fs::read_to_string(outcome.dir.join("requests.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
    assert_eq!(csv.matches(",cancelled,").count() as u64, counts.cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_schedule_is_sent_on_time_by_an_unbounded_strategy() {
    let src = r#"
name = "paced"
[target]
kind = "mock"
[mock]
ttft_ms = 5
itl_ms = 1
[workload]
arrival = { kind = "constant", rate = 40 }
duration_s = 1.5
max_tokens = 2
[[strategy]]
kind = "join_all"
"#;
    let run = run(src).await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 60, "40/s for 1.5 s");
    let intended: Vec<u64> = run
        .records_of(s)
        .iter()
        .map(|r| r.intended.as_micros() as u64)
        .collect();
    assert_eq!(intended[1], 25_000);
    assert_eq!(intended[59], 59 * 25_000);
    assert!((s.scheduled_rate().unwrap() - 40.0).abs() < 1e-9);
    // The pacer sends within a fraction of a millisecond; 20 ms p99 leaves room for a
    // loaded debug-build CI machine while still catching a schedule that slips.
    let delay = s.histogram(Metric::DispatchDelay);
    assert_eq!(delay.len(), 60);
    assert!(
        delay.value_at_quantile(0.99) < 20_000,
        "p99 dispatch delay {} µs",
        delay.value_at_quantile(0.99)
    );
    assert!((s.achieved_send_rate().unwrap() / 40.0 - 1.0).abs() < 0.05);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_arrivals_and_counts_them() {
    // Serial serves 10/s (100 ms each) while 40/s arrive: the queue fills at once.
    let src = r#"
name = "overload"
[target]
kind = "mock"
[mock]
ttft_ms = 100
[workload]
arrival = { kind = "constant", rate = 40 }
requests = 20
max_tokens = 1
[[strategy]]
kind = "serial"
max_queue = 2
label = "bounded"
[[strategy]]
kind = "serial"
label = "unbounded"
"#;
    let run = run(src).await;
    let bounded = run.strategies[0].counts();
    assert_eq!(bounded.ok + bounded.dropped, 20, "{bounded:?}");
    assert!(bounded.dropped >= 10, "{bounded:?}");
    assert!(
        run.records_of(&run.strategies[0])
            .iter()
            .filter(|r| r.outcome == Outcome::Dropped)
            .all(|r| r.sent.is_none())
    );
    let unbounded = &run.strategies[1];
    assert_eq!(unbounded.counts().ok, 20);
    // Queued items wait: their latency from the intended start far exceeds the service
    // time (the last one arrives at 0.475 s and is sent after 1.9 s of service).
    let corrected = unbounded.histogram(Metric::E2eCorrected).max();
    let uncorrected = unbounded.histogram(Metric::E2e).max();
    assert!(
        corrected > 1_000_000 && uncorrected < 600_000,
        "{corrected} vs {uncorrected} µs"
    );
}

/// 200 requests at 50/s to a server that freezes for 1 s at t = 1 s.
fn stalled_schedule(extra: &str) -> String {
    format!(
        r#"
name = "stall"
[target]
kind = "mock"
[mock]
ttft_ms = 3
itl_ms = 1
stall = {{ at_s = 1.0, duration_s = 1.0 }}
[workload]
arrival = {{ kind = "constant", rate = 50 }}
requests = 200
max_tokens = 2
{extra}
[[strategy]]
kind = "semaphore"
limit = 1
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stall_shows_in_the_corrected_p99_and_not_in_the_uncorrected() {
    let run = run(&stalled_schedule("")).await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 200);
    // One request sits through the stall; the ~50 that arrive meanwhile wait in the
    // client. Measured from the send, only that one is slow (0.5 % of samples, above
    // p99); measured from the intended start, a quarter of the requests are.
    let uncorrected = s.histogram(Metric::E2e);
    let corrected = s.histogram(Metric::E2eCorrected);
    assert!(
        uncorrected.max() >= 900_000,
        "the stalled request itself: {} µs",
        uncorrected.max()
    );
    assert!(
        uncorrected.value_at_quantile(0.99) < 200_000,
        "uncorrected p99 {} µs",
        uncorrected.value_at_quantile(0.99)
    );
    assert!(
        corrected.value_at_quantile(0.99) >= 800_000,
        "corrected p99 {} µs",
        corrected.value_at_quantile(0.99)
    );
    assert!(s.histogram(Metric::DispatchDelay).value_at_quantile(0.99) >= 700_000);
}

/// The mock's clock and the strategy's start at the same instant: a request sent at
/// t = 0 into a stall of the first second cannot end before 1 s on the strategy's clock.
/// (The mock used to be reset before the client was built, a few milliseconds early, so
/// such a request ended at about 995 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_from_zero_ends_a_second_after_the_strategys_zero() {
    let src = r#"
name = "stall-at-zero"
[target]
kind = "mock"
[mock]
ttft_ms = 1
itl_ms = 1
stall = { at_s = 0, duration_s = 1 }
[workload]
requests = 2
max_tokens = 1
[[strategy]]
kind = "serial"
[[strategy]]
kind = "serial"
label = "serial-again"
"#;
    let run = run(src).await;
    // Each strategy gets its own reset, so the second is held for its first second too.
    for s in &run.strategies {
        assert_eq!(s.counts().ok, 2);
        let first = run
            .records_of(s)
            .iter()
            .filter_map(|r| r.end)
            .min()
            .unwrap();
        // The upper bound only keeps the stall from being something else: it is wide
        // for a loaded shared machine.
        assert!(
            first >= Duration::from_secs(1) && first < Duration::from_secs(3),
            "first request ended at {first:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_fails_as_a_timeout_instead_of_hanging() {
    let run = run(&stalled_schedule("[client]\nidle_timeout_s = 0.2")).await;
    let s = &run.strategies[0];
    let counts = s.counts();
    let timeouts = counts
        .by_class
        .get(&llmbench::recorder::ErrorClass::Timeout)
        .copied()
        .unwrap_or(0);
    assert!(timeouts >= 1, "{counts:?}");
    assert_eq!(counts.ok + timeouts, 200, "{counts:?}");
    assert!(s.makespan() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_is_replayed_with_its_times_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.jsonl"),
        "{\"timestamp\": 100.0, \"input_tokens\": 12, \"output_tokens\": 3}\n\
         {\"timestamp\": 100.4, \"input_tokens\": 30, \"output_tokens\": 5}\n\
         {\"timestamp\": 100.2, \"input_tokens\": 7, \"output_tokens\": 2}\n",
    )
    .unwrap();
    let src = r#"
name = "replay"
[target]
kind = "mock"
[mock]
ttft_ms = 5
itl_ms = 1
[workload]
arrival = { kind = "trace", path = "t.jsonl", time_scale = 0.5 }
[[strategy]]
kind = "serial"
"#;
    let scenario = Scenario::parse_in(src, "test", dir.path()).unwrap();
    let items = llmbench::workload::load(&scenario).unwrap();
    let summary: Vec<_> = items
        .iter()
        .map(|i| (i.at.as_millis(), i.prompt_tokens, i.max_tokens))
        .collect();
    assert_eq!(summary, vec![(0, 12, 3), (100, 7, 2), (200, 30, 5)]);
    let outcome = common::run_in(src, dir.path(), CancellationToken::new()).await;
    let s = &outcome.result.strategies[0];
    assert_eq!(s.counts().ok, 3);
    let tokens: Vec<u32> = common::records(&outcome, 0)
        .iter()
        .map(|r| r.output_tokens)
        .collect();
    assert_eq!(
        tokens,
        vec![3, 2, 5],
        "the mock answers each row's completion length"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_sends_each_token_at_once() {
    // 2 ms to the first token and 1 ms a token after: a response of 5 tokens takes about
    // 6 ms. Were small writes held back (Nagle's algorithm against a delayed ACK), each
    // response would take 40 ms or more. 25 ms leaves room for a loaded machine.
    let run = run(r#"
name = "nodelay"
[target]
kind = "mock"
[mock]
ttft_ms = 2
itl_ms = 1
[workload]
requests = 20
max_tokens = 5
[[strategy]]
kind = "serial"
"#)
    .await;
    let e2e = run.strategies[0].histogram(Metric::E2e);
    assert!(
        e2e.value_at_quantile(0.5) < 25_000,
        "E2E p50 {} µs",
        e2e.value_at_quantile(0.5)
    );
}
