//! The strategies that respect a quota, against the mock: `rate` paced to the mock's
//! RPM, `adaptive` finding it from 429s, and `adaptive` on latency finding a server's
//! knee. Quotas are small and requests short, so each test runs in a few seconds.

mod common;

/// The runs here measure in time (a limit that follows latency, a key refilling): one at
/// a time, so that on a machine of two cores one's load is not another's noise (the
/// latency signal of `adaptive_on_latency…` is the mock's queueing, which a neighbour's
/// load would add to).
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(src: &str) -> common::Measured {
    let _timed = TIMED.lock().await;
    common::run(src).await
}

use llmbench::recorder::Outcome;
use llmbench::recorder::timeline::LimitUnit;
use llmbench::result::StrategyResult;
use std::time::Duration;

/// The ends of the successful requests, in order.
fn ends(run: &common::Measured, s: &StrategyResult) -> Vec<Duration> {
    let mut ends: Vec<Duration> = run
        .records_of(s)
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .filter_map(|r| r.end)
        .collect();
    ends.sort();
    ends
}

/// Completions per second between the `from`-th and the last completion.
fn rate_after(ends: &[Duration], from: usize) -> f64 {
    let span = ends[ends.len() - 1] - ends[from];
    (ends.len() - 1 - from) as f64 / span.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_at_the_mocks_rpm_draws_no_429_and_completes_at_its_configured_rate() {
    // 600 RPM: the mock's bucket holds 600 and refills 10 a second. The limiter at the
    // default headroom holds 588 and refills 9.8 a second: it sends 588 at once, then
    // one every 102 ms; 652 requests are 64 paced ones, about 6.5 s.
    let src = r#"
name = "rate"
[target]
kind = "mock"
[mock]
ttft_ms = 20
itl_ms = 1
threads = 2
rate_limit = { rpm = 600 }
[workload]
requests = 652
stream = false
prompt_tokens = 8
max_tokens = 2
[[strategy]]
kind = "rate"
rpm = 600
"#;
    let run = run(src).await;
    let s = &run.strategies[0];
    let counts = s.counts();
    assert_eq!((counts.ok, counts.rate_limited), (652, 0), "{counts:?}");
    let mock = s.mock.unwrap();
    assert_eq!(mock.rate_limited, 0, "the mock refused none: {mock:?}");
    assert_eq!(mock.requests, 652, "and none was retried: {mock:?}");
    // The steady part: from the 600th completion (past the bucket's 588 and the
    // refill while they ran) to the last. Every request takes the same time, so
    // completions follow sends; 2 % of 9.8 a second over ~5 s is 100 ms, far above the
    // millisecond timer error, which the bucket does not accumulate anyway.
    let ends = ends(&run, s);
    let rate = rate_after(&ends, 600);
    eprintln!("steady rate {rate:.4}/s, makespan {:?}", s.makespan());
    assert!(
        (rate / 9.8 - 1.0).abs() < 0.02,
        "steady rate {rate}/s, configured 9.8"
    );
    // The limiter's rate is recorded: 9.8 requests a second throughout.
    let series = s
        .limit_series
        .as_ref()
        .expect("a rate strategy records its rate");
    assert_eq!(series.unit, LimitUnit::PerSecond);
    assert_eq!(series.points.len(), 1, "{series:?}");
    assert!((series.points[0].1 - 9.8).abs() < 1e-9, "{series:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_with_retries_answers_everything_with_few_429s_and_a_limit_that_settles() {
    // 1,200 RPM: 1,200 at once, then 20 a second. Each request takes about 250 ms, so
    // the quota's rate is 5 in flight.
    let src = r#"
name = "adaptive"
[target]
kind = "mock"
[mock]
ttft_ms = 250
itl_ms = 1
threads = 2
rate_limit = { rpm = 1200, retry_after_ms = true }
[workload]
requests = 1440
stream = false
prompt_tokens = 8
max_tokens = 2
[retry]
policy = "exponential"
max_attempts = 10
[[strategy]]
kind = "adaptive"
"#;
    let run = run(src).await;
    let s = &run.strategies[0];
    let counts = s.counts();
    let mock = s.mock.unwrap();
    let series = s
        .limit_series
        .as_ref()
        .expect("an adaptive strategy records its limit");
    let ends = ends(&run, s);
    // Past the bucket (1,200) and its refill while the batch drained it (~60).
    let steady = rate_after(&ends, 1_280);
    eprintln!(
        "{counts:?}\nmock {mock:?}\nmakespan {:?}\nlimit {:?}\nsteady rate {steady}/s",
        s.makespan(),
        series.points,
    );
    // Every request answered, retries included.
    assert_eq!((counts.ok, counts.failed), (1440, 0), "{counts:?}");
    // 429s under 5 % of the attempts the mock saw (0.4 % and 2.5 % in two runs: the
    // attempts in flight when the bucket runs dry, then a few per AIMD cycle).
    let share = mock.rate_limited as f64 / mock.requests as f64;
    assert!(share < 0.05, "429s are {:.1} % of attempts", share * 100.0);
    // At least 90 % of the quota's 20 a second once the bucket is drained.
    assert!(steady >= 0.9 * 20.0, "steady rate {steady}/s");
    // Warm: from the third decrease on. The slow start ends at the ceiling; the first
    // 429, with its pause, restarts the limit from 1 under a threshold of half the
    // ceiling, so the first cycle still doubles past the quota (to 16 or 32); the second
    // 429 halves that, and the third sets a threshold near the quota. From there the
    // limit saws: up by one per window, back to 1 on a 429, with peaks about twice the 5
    // in flight the quota sustains (9 to 10 measured). The band: never above 12, and
    // every peak from 4 to 12. The 160 requests past the bucket and its refill give the
    // steady phase about 8 s at 20 a second, room for cycles after the third decrease.
    assert_eq!(series.unit, LimitUnit::InFlight);
    let decreases: Vec<usize> = series
        .points
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].1 < w[0].1)
        .map(|(i, _)| i + 1)
        .collect();
    let warm_from = *decreases
        .get(2)
        .expect("the limit came down three times after the bucket ran dry");
    let warm = &series.points[warm_from..];
    assert!(warm.len() >= 4, "{series:?}");
    assert!(
        warm.iter().all(|&(_, l)| l <= 12.0),
        "limit above the band once warm: {warm:?}"
    );
    let peaks: Vec<f64> = warm
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .map(|w| w[0].1)
        .collect();
    assert!(!peaks.is_empty(), "no cycle to judge: {warm:?}");
    assert!(
        peaks.iter().all(|p| (4.0..=12.0).contains(p)),
        "peaks out of the band: {peaks:?} in {warm:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_on_latency_settles_near_the_servers_knee() {
    // 16 decode slots, 100 ms a request: past 16 in flight requests queue at the server
    // and latency grows with every one more.
    let src = r#"
name = "latency"
[target]
kind = "mock"
[mock]
ttft_ms = 100
itl_ms = 1
threads = 2
capacity = { max_concurrent = 16 }
[workload]
requests = 800
stream = false
prompt_tokens = 8
max_tokens = 2
[[strategy]]
kind = "adaptive"
signal = "latency"
"#;
    let run = run(src).await;
    let s = &run.strategies[0];
    let counts = s.counts();
    let series = s
        .limit_series
        .as_ref()
        .expect("an adaptive strategy records its limit");
    eprintln!(
        "{counts:?}\nmakespan {:?}\nlimit {:?}",
        s.makespan(),
        series.points
    );
    assert_eq!((counts.ok, counts.failed), (800, 0), "{counts:?}");
    // Slow start overshoots to 32 within the first second; from then on the limit
    // stays within 25 % of the knee, 12 to 20 (16 to 18 measured).
    let settled: Vec<f64> = series
        .points
        .iter()
        .filter(|(t, _)| *t > 1.5)
        .map(|p| p.1)
        .collect();
    let last = series.at(s.makespan().as_secs_f64()).unwrap();
    assert!((12.0..=20.0).contains(&last), "{series:?}");
    assert!(
        settled.iter().all(|l| (12.0..=20.0).contains(l)),
        "limit left 12 to 20 after 1.5 s: {series:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_share_one_key_each_with_its_own_limit_and_its_own_share_of_the_work() {
    // Three adaptive clients of one 600 RPM key (600 at once, then 10 a second), each
    // with its own AIMD state, the 660 items dealt round robin: every request answered
    // on a retry if need be, each copy exactly its third, and the strategy's recorded
    // limit the sum of the three. Each retry waits the mock's hint (the ~100 ms until
    // its key's next request), and the 60 requests past the burst drain at 10 a second,
    // so one of them may lose the race for a freed request up to ~60 times: with 10
    // attempts one ran out now and then (659 of 660); 100 cover the drain.
    let src = r#"
name = "copies"
[target]
kind = "mock"
[mock]
ttft_ms = 100
itl_ms = 1
rate_limit = { rpm = 600, retry_after_ms = true }
[workload]
requests = 660
stream = false
prompt_tokens = 8
max_tokens = 2
[retry]
policy = "exponential"
max_attempts = 100
[[strategy]]
kind = "adaptive"
copies = 3
"#;
    let run = run(src).await;
    let s = &run.strategies[0];
    assert_eq!(s.label, "adaptive-x3");
    assert_eq!(s.copies, 3);
    let counts = s.counts();
    assert_eq!((counts.ok, counts.failed), (660, 0), "{counts:?}");
    let summary = llmbench::summary::Summary::from_run(&run);
    let shares = &summary.strategies[0].copies;
    assert_eq!(shares.len(), 3);
    for share in shares {
        assert_eq!((share.requests, share.ok), (220, 220), "{shares:?}");
    }
    // Each copy starts at the default initial limit of 4: the first point is their sum.
    let series = s.limit_series.as_ref().expect("a limit series");
    assert_eq!(series.points.last().map(|p| p.1 >= 3.0), Some(true));
    assert!(
        series.points.iter().any(|&(_, v)| v == 12.0),
        "{:?}",
        &series.points[..5]
    );
}

#[test]
fn copies_are_checked_where_they_are_written() {
    let src = |copies: &str| {
        format!(
            "name = \"c\"\n[target]\nkind = \"mock\"\n[workload]\nrequests = 4\n[[strategy]]\nkind = \"serial\"\ncopies = {copies}\n"
        )
    };
    let err = llmbench::scenario::Scenario::parse(&src("0"), "c.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("strategy[0].copies: must be a number of copies from 1 to 1,024, got 0"),
        "{err}"
    );
    let scenario = llmbench::scenario::Scenario::parse(&src("2"), "c.toml").unwrap();
    assert_eq!(scenario.strategies().next().unwrap().label(), "serial-x2");
}
