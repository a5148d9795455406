//! Retries against the mock's rate limit: hints obeyed, attempts bounded, throughput
//! settling at the limit.

mod common;
use common::run;

use llmbench::recorder::Outcome;
use std::time::Duration;

fn limited(rpm: u64, requests: u64, retry: &str) -> String {
    format!(
        r#"
name = "retries"
[target]
kind = "mock"
[mock]
ttft_ms = 5
itl_ms = 1
rate_limit = {{ rpm = {rpm} }}
[workload]
requests = {requests}
max_tokens = 2
[retry]
{retry}
[[strategy]]
kind = "join_all"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_after_hint_is_waited_out_and_then_the_request_succeeds() {
    // 60 RPM: the full bucket admits 60 of 62; the other two get 429 with
    // `retry-after: 1` (the bucket refills one per second), wait, and get in.
    let run = run(&limited(
        60,
        62,
        "policy = \"anthropic-python\"\nmax_attempts = 5",
    ))
    .await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 62);
    let retried: Vec<_> = run
        .records_of(s)
        .iter()
        .filter(|r| r.attempts > 1)
        .collect();
    assert_eq!(retried.len(), 2);
    for r in &retried {
        assert!(
            r.backoff >= Duration::from_secs(r.attempts as u64 - 1),
            "{r:?}"
        );
        assert!(r.e2e().unwrap() >= r.backoff, "E2E spans every attempt");
        // TTFT is the successful attempt's own, not the whole wait.
        assert!(r.ttft().unwrap() < Duration::from_millis(500), "{r:?}");
    }
    let mock = s.mock.unwrap();
    let extra_attempts: u64 = run
        .records_of(s)
        .iter()
        .map(|r| u64::from(r.attempts) - 1)
        .sum();
    assert_eq!(mock.rate_limited, extra_attempts);
    assert_eq!(mock.requests, 62 + extra_attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_bounds_the_retries() {
    // 1 RPM: one request gets in, and the bucket needs a minute for the next: hints of
    // 60 s exceed max_retry_after_s, so the policy backs off (10 ms) and gives up after
    // its second attempt.
    let retry = "policy = \"exponential\"\nmax_attempts = 2\nbase_ms = 10\nmax_retry_after_s = 1";
    let run = run(&limited(1, 3, retry)).await;
    let s = &run.strategies[0];
    let counts = s.counts();
    assert_eq!((counts.ok, counts.rate_limited), (1, 2));
    for r in run
        .records_of(s)
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
    {
        assert_eq!(r.attempts, 2);
        assert!(r.backoff <= Duration::from_millis(10));
    }
    let mock = s.mock.unwrap();
    assert_eq!((mock.requests, mock.admitted, mock.rate_limited), (5, 1, 4));
    assert!(
        s.makespan() < Duration::from_secs(5),
        "no 60 s hint was obeyed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retries_throughput_settles_at_the_rate_limit() {
    // 60 RPM = 1 request/s once the bucket's first 60 are spent: the 6 left over
    // complete one per second, so the batch takes about 6 s and nothing fails.
    let run = run(&limited(
        60,
        66,
        "policy = \"openai-python\"\nmax_attempts = 30",
    ))
    .await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 66);
    let mut late_ends: Vec<f64> = run
        .records_of(s)
        .iter()
        .filter(|r| r.attempts > 1)
        .map(|r| r.end.unwrap().as_secs_f64())
        .collect();
    late_ends.sort_by(f64::total_cmp);
    assert_eq!(late_ends.len(), 6);
    // The bucket refills at exactly 1/s and hints are whole seconds: the retried
    // requests finish about a second apart (0.5–1.6 s allows for the rounding of
    // hints and for a slow CI machine).
    let rate = (late_ends.len() - 1) as f64 / (late_ends[5] - late_ends[0]);
    assert!(
        (0.6..=2.0).contains(&rate),
        "settled at {rate}/s: {late_ends:?}"
    );
    assert!(
        late_ends[5] > 4.5,
        "six refills take at least five seconds: {late_ends:?}"
    );
}
