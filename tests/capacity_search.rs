//! Capacity planning against the mock, where the answers are known: the search finds
//! the analytic saturation rate of the capacity model, and the quota planner's batch
//! ETA matches what a `rate` strategy at the quota measures.

mod common;

use llmbench::capacity::{self, Probes};
use llmbench::planner;
use llmbench::runner::{RunOptions, RunOutcome};
use llmbench::scenario::Scenario;
use llmbench::search::SearchStatus;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// 18 decode slots, a constant 50 ms to the first token and 18 gaps of 25 ms: every
/// request holds a slot 500 ms, so the server saturates at 18 / 0.5 s = 36 req/s, and
/// past it the queue grows by the excess rate: after 4 s at 5 % over, the last
/// arrivals wait 0.05 × 4 s = 200 ms for a slot, which breaks the 200 ms TTFT p99
/// (50 ms of it the server's own). Below it nothing queues (constant arrivals and
/// service times).
const SATURATING: &str = r#"
name = "saturation"
[target]
kind = "mock"
[mock]
ttft_ms = 50
itl_ms = 25
capacity = { max_concurrent = 18 }
[workload]
max_tokens = 19
prompt_tokens = 16
arrival = { kind = "constant", rate = 10 }
duration_s = 4
[search]
dimension = "rate"
low = 20
high = 80
duration_s = 4
target_rate = 100
[slo]
ttft_p99_ms = 200
max_error_rate = 0.01
[[strategy]]
kind = "join_all"
"#;

/// The searches and the timed batch run one at a time: each is a timing measurement on
/// a machine of two cores, and another test's load would be its noise.
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the search of scenario text in a temporary folder (returned with the outcome,
/// to be read) until it ends or `cancel`.
async fn search(src: &str, cancel: CancellationToken) -> (RunOutcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, src).unwrap();
    let scenario = Scenario::parse(src, "test").unwrap();
    let probes = Probes::new(&scenario, None).unwrap();
    let options = RunOptions {
        output: dir.path().join("results"),
        quiet: true,
        report: false,
        shard: None,
        start_at: None,
    };
    let outcome = capacity::run(&probes, &file, &options, cancel)
        .await
        .unwrap();
    (outcome, dir)
}

// About 30 s: six or so probes of 4 s each (a shorter probe cannot tell 5 % over
// saturation from the noise of a loaded debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_the_analytic_saturation_rate_within_5_percent() {
    let _timed = TIMED.lock().await;
    let (outcome, _dir) = search(SATURATING, CancellationToken::new()).await;
    let answer = outcome.result.capacity.clone().unwrap();
    let found = answer.highest_passing.unwrap();
    let analytic = 18.0 / 0.5;
    assert_eq!(answer.status, SearchStatus::Found, "{answer:#?}");
    assert!(
        (found - analytic).abs() / analytic <= 0.05,
        "found {found} req/s, analytic {analytic}: {answer:#?}"
    );
    assert!(answer.points <= 12, "{} points", answer.points);
    assert_eq!(
        answer.binding_objective.as_deref(),
        Some("TTFT p99 ≤ 200 ms")
    );
    // 100 req/s at 80 % of ~36 each.
    assert_eq!(answer.replicas.as_ref().unwrap().count, 4);
    // Every probe is a saved strategy run, and summary.json carries the answer.
    let summary = llmbench::summary::Summary::load(&outcome.dir).unwrap();
    assert_eq!(summary.strategies.len(), answer.probes.len());
    let saved = summary.capacity.unwrap();
    assert_eq!(
        (saved.status, saved.probes.len(), saved.binding_objective),
        (answer.status, answer.probes.len(), answer.binding_objective)
    );
    assert!((saved.highest_passing.unwrap() - found).abs() < 1e-9);
    assert!(summary.complete);
    // Each probe's goodput, counted as its requests were recorded, is exactly what its
    // rows in requests.csv recount; past saturation some answers came too late.
    let slo = Scenario::parse(SATURATING, "test").unwrap().slo;
    let rows = llmbench::report::requests_csv::read(&outcome.dir.join("requests.csv")).unwrap();
    let mut late = 0;
    for (probe, ran) in answer.probes.iter().zip(&outcome.result.strategies) {
        assert_eq!(probe.label, ran.label);
        let good = rows[&probe.label].iter().filter(|r| r.meets(&slo)).count() as u64;
        assert_eq!(ran.tally.good, good, "{}", probe.label);
        let makespan = ran.makespan().as_secs_f64();
        assert_eq!(probe.goodput_rps, good as f64 / makespan, "{}", probe.label);
        late += ran.counts().ok - good;
    }
    assert!(late > 0, "every answer within the objectives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_search_leaves_its_probes_and_a_partial_answer() {
    let _timed = TIMED.lock().await;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.cancel();
    });
    let (outcome, _dir) = search(SATURATING, cancel).await;
    let summary = llmbench::summary::Summary::load(&outcome.dir).unwrap();
    assert!(summary.interrupted && !summary.complete);
    assert_eq!(summary.strategies.len(), 1, "the probe stopped is kept");
    let answer = summary.capacity.unwrap();
    assert!(
        matches!(answer.status, SearchStatus::Partial { .. }),
        "{answer:#?}"
    );
    assert!(answer.probes[0].interrupted);
    assert!(
        answer.sentence().contains("partial"),
        "{}",
        answer.sentence()
    );
}

/// A batch of 64 against 60 RPM, paced by a `rate` strategy at the quota (98 % of it):
/// 58.8 requests at once, then 0.98 a second; the last is admitted after (64 − 58.8) /
/// 0.98 = 5.31 s and answered 40 ms later.
const QUOTA: &str = r#"
name = "quota-eta"
[target]
kind = "mock"
[mock]
ttft_ms = 20
itl_ms = 5
rate_limit = { rpm = 60 }
[workload]
requests = 64
max_tokens = 5
prompt_tokens = 8
[[strategy]]
kind = "rate"
rpm = 60
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planned_batch_eta_matches_a_rate_strategy_at_the_quota_within_3_percent() {
    let _timed = TIMED.lock().await;
    let scenario = Scenario::parse(QUOTA, "test").unwrap();
    let items = llmbench::workload::load(&scenario).unwrap();
    let batch = planner::Batch::of(&scenario, &items);
    let rules = planner::QuotaRules::of(&scenario).unwrap();
    let latency = planner::latency(&scenario, &batch).unwrap();
    let plan = planner::plan(&scenario, &batch, &rules, latency).unwrap();
    assert!(
        (plan.eta_s - (5.2 / 0.98 + 0.04)).abs() < 1e-6,
        "{}",
        plan.eta_s
    );
    let run = common::run(QUOTA).await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 64, "no 429 at the quota");
    let measured = s.makespan().as_secs_f64();
    assert!(
        (measured - plan.eta_s).abs() / plan.eta_s <= 0.03,
        "measured {measured:.3} s, planned {:.3} s",
        plan.eta_s
    );
    // The plan also names the concurrency that holds the rate and its ETA.
    assert_eq!(plan.concurrency, Some(1));
    assert!(plan.to_string().contains("RPM binds"), "{plan}");
}

#[test]
fn the_commands_refuse_what_they_cannot_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, QUOTA).unwrap();
    let out = common::llmbench(&["capacity", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [search] section"));
    let out = common::llmbench(&["quota", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("RPM binds"));
    // Dry run: the most the search may spend.
    std::fs::write(&file, SATURATING).unwrap();
    let out = common::llmbench(&["capacity", "--dry-run", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("at most 12 points, 24 probes"), "{text}");
    // A prompts file that cannot be read is refused before any probe.
    let with_prompts = SATURATING.replace(
        "duration_s = 4\n[search]",
        "duration_s = 4\nprompts = \"missing.txt\"\n[search]",
    );
    std::fs::write(&file, with_prompts).unwrap();
    let out = common::llmbench(&["capacity", "--dry-run", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("missing.txt") && text.contains("(the file of workload.prompts)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_stops_a_search_with_a_partial_answer() {
    let _timed = TIMED.lock().await;
    // Probes of 16 requests under a budget of 20: the second probe is cut short.
    let src = r#"
name = "budgeted"
[target]
kind = "mock"
[mock]
ttft_ms = 10
itl_ms = 1
[workload]
max_tokens = 2
prompt_tokens = 4
arrival = { kind = "constant", rate = 40 }
requests = 16
[search]
low = 40
high = 160
requests = 16
[slo]
max_error_rate = 0.01
[budget]
max_requests = 20
[[strategy]]
kind = "join_all"
"#;
    let scenario = Scenario::parse(src, "test").unwrap();
    let plan = Probes::new(&scenario, None).unwrap().plan();
    assert_eq!(plan.requests, 16 * plan.probes);
    let (outcome, _dir) = search(src, CancellationToken::new()).await;
    let answer = outcome.result.capacity.unwrap();
    assert_eq!(answer.probes.len(), 2, "{answer:#?}");
    assert!(answer.probes[1].interrupted, "a cut probe decides nothing");
    assert_eq!(answer.highest_passing, Some(40.0));
    let SearchStatus::Partial { reason } = answer.status else {
        panic!("{:?}", answer.status)
    };
    assert!(reason.contains("max_requests 20"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_search_finds_the_server_slots() {
    let _timed = TIMED.lock().await;
    // Four slots of 200 ms: up to 4 in flight nothing waits; a fifth waits a whole
    // request for a slot, its TTFT 400 ms, past the 300 ms objective (100 ms above the
    // server's own TTFT for the noise of a loaded machine).
    let src = r#"
name = "slots"
[target]
kind = "mock"
[mock]
ttft_ms = 200
capacity = { max_concurrent = 4 }
[workload]
requests = 12
max_tokens = 1
prompt_tokens = 4
[search]
dimension = "concurrency"
low = 1
high = 8
requests = 12
[slo]
ttft_p99_ms = 300
[[strategy]]
kind = "joinset"
limit = 1
"#;
    let (outcome, _dir) = search(src, CancellationToken::new()).await;
    let answer = outcome.result.capacity.unwrap();
    assert_eq!(
        (
            answer.highest_passing,
            answer.lowest_failing,
            answer.status.clone()
        ),
        (Some(4.0), Some(5.0), SearchStatus::Found),
        "{answer:#?}"
    );
    assert!(outcome.result.strategies.iter().all(|s| s.limit.is_some()));
}

#[test]
fn bad_search_and_quota_sections_name_the_key() {
    let base = "name = \"s\"\n[target]\nkind = \"mock\"\n[workload]\nrequests = 4\n[[strategy]]\nkind = \"join_all\"\n";
    let cases = [
        (
            "[search]\nlow = 10\nhigh = 5\nrequests = 4",
            "search",
            "must be below `high`",
        ),
        ("[search]\nlow = 1\nhigh = 5", "search", "needs a bound"),
        (
            "[search]\ndimension = \"concurrency\"\nlow = 1\nhigh = 5\nduration_s = 3\nrequests = 9",
            "search",
            "`duration_s` applies to rate probes only",
        ),
        (
            "[search]\nlow = 1\nhigh = 5\nrequests = 4\nrepeats = 11",
            "search",
            "`repeats` must be from 1 to 10",
        ),
        (
            "[search]\ndimension = \"concurrency\"\nlow = 1.5\nhigh = 5\nrequests = 9",
            "search",
            "give whole numbers",
        ),
        (
            "[search]\nlow = 1\nhigh = 5\nrequests = 4\nprecision = 0.0001",
            "search.precision",
            "must be a precision (0.05 = 5 %) from 0.001 to 1",
        ),
        (
            "[search]\nlow = 1\nhigh = 5\nrequests = 4\nheadroom = 0",
            "search.headroom",
            "must be a share of the boundary load",
        ),
        (
            "[quota]\ntpm = 10\notpm = 10",
            "quota",
            "give one provider's limits",
        ),
        ("[quota]\nrpm = 0", "quota.rpm", "must be a whole number"),
    ];
    for (section, key, message) in cases {
        let src = format!("{base}{section}\n");
        let e = Scenario::parse(&src, "s.toml").unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(message), "{section}: {e}");
    }
    // A search that cannot run with the scenario's strategy says why.
    let src = format!(
        "{base}[search]\ndimension = \"concurrency\"\nlow = 1\nhigh = 5\nrequests = 4\n[slo]\nttft_p99_ms = 100\n"
    );
    let scenario = Scenario::parse(&src, "s.toml").unwrap();
    let e = Probes::new(&scenario, None).err().unwrap();
    assert!(e.contains("which join_all has none of"), "{e}");
}
