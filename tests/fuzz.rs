//! Property-based fuzzing of everything that reads input llmbench does not control: the
//! scenario parser (and, for every scenario it accepts, the steps that must not panic on
//! accepted input: drawing the work items, the plan, the strategies, the mock's
//! distributions, the retry policy, the client and the mock server themselves), the SSE
//! decoder, and the client's wire adapters.
//!
//! Runs in every `cargo test` with a bounded number of cases drawn from a fixed seed, so
//! CI is repeatable and stays within seconds. Failures proptest finds are kept in
//! `tests/fuzz.proptest-regressions` (committed) and replayed first; each crash fixed is
//! also an explicit test in the module that owns the value.
//!
//! Longer runs, with the usual proptest variables:
//!
//! ```sh
//! PROPTEST_CASES=100000 cargo test --test fuzz                      # more cases, same seed
//! PROPTEST_CASES=100000 PROPTEST_RNG_SEED=7 cargo test --test fuzz  # another seed
//! ```

use llmbench::client::{AnthropicMessages, Client, Endpoint, OpenAiChat, OpenAiCompletions};
use llmbench::client::{ErrorClass, Exchange, Sockets, WireAdapter};
use llmbench::plan::Plan;
use llmbench::scenario::{Scenario, Target};
use llmbench::wire::sse::{SseEvent, SseParser};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The runner's settings: `cases` cases from a fixed seed, unless `PROPTEST_CASES` or
/// `PROPTEST_RNG_SEED` say otherwise.
fn config(cases: u32) -> Config {
    let mut config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_iters: 2048,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x11b_e4c4);
    }
    config
}

// ---------------------------------------------------------------------------------------
// Scenario text

/// Values that break naive code, as TOML literals: zero, negatives, the edges of i64,
/// huge, tiny and non-finite floats, wrong types, empty and odd strings, nesting.
const HOSTILE: &[&str] = &[
    "[3, 3]",
    "\"a/b\"",
    "{ kind = \"ramp\", start_rate = -1, stages = [] }",
    "{ kind = \"poisson\" }",
    "{ kind = \"nope\" }",
    "{ at_s = 0 }",
    "0",
    "-1",
    "1",
    "2",
    "-0.0",
    "0.5",
    "1e-300",
    "-1e-300",
    "5e-324",
    "1e300",
    "-1e300",
    "1.7976931348623157e308",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "10000000",
    "10000001",
    "1e7",
    "1e15",
    "1e16",
    "\"\"",
    "\"x\"",
    "\"a b\"",
    "\"\\u0000\"",
    "\"\\n\"",
    "\"é\"",
    "true",
    "false",
    "[]",
    "[0]",
    "[1, 2]",
    "[1, 1]",
    "[[]]",
    "[\"a\", 1]",
    "{}",
    "{ a = 1 }",
    "{ kind = 1 }",
    "{ dist = \"constant\" }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
];

/// Distributions as written in a scenario, with parameters from the edges.
fn distribution() -> BoxedStrategy<String> {
    let number = || {
        prop_oneof![
            20 => select(&["1", "2", "3.5", "1e7", "10000000", "9999999.5"][..]),
            4 => select(&["0.5", "1e-300", "5e-324", "1e10"][..]),
            1 => select(&["0", "-1", "nan", "inf", "1e300"][..]),
        ]
    };
    prop_oneof![
        number().prop_map(str::to_string),
        (number(), number())
            .prop_map(|(a, b)| format!("{{ dist = \"uniform\", min = {a}, max = {b} }}")),
        (number(), number())
            .prop_map(|(a, b)| format!("{{ dist = \"normal\", mean = {a}, stddev = {b} }}")),
        (number(), number())
            .prop_map(|(a, b)| format!("{{ dist = \"lognormal\", median = {a}, p99 = {b} }}")),
        number().prop_map(|a| format!("{{ dist = \"constant\", value = {a} }}")),
    ]
    .boxed()
}

/// A hostile value of any kind, including long strings.
fn hostile() -> BoxedStrategy<String> {
    prop_oneof![
        8 => select(HOSTILE).prop_map(str::to_string),
        1 => (1usize..5000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        1 => distribution(),
    ]
    .boxed()
}

/// `key = value`, present with probability `p`: a value from `plausible` (the key's own
/// kind of value, edges included) mostly, else a hostile one; rarely enough that a good
/// share of the scenarios parse, and reach the steps after parsing.
fn key(name: &'static str, plausible: &'static [&'static str], p: f64) -> BoxedStrategy<String> {
    let value = prop_oneof![30 => select(plausible).prop_map(str::to_string), 1 => hostile()];
    // Present with probability `p` (proptest wants it below 1).
    proptest::option::weighted(p.min(0.999), value)
        .prop_map(move |v| v.map_or_else(String::new, |v| format!("{name} = {v}\n")))
        .boxed()
}

/// `key = distribution`, present with probability `p`.
fn dist_key(name: &'static str, p: f64) -> BoxedStrategy<String> {
    proptest::option::weighted(
        p.min(0.999),
        prop_oneof![30 => distribution(), 1 => hostile()],
    )
    .prop_map(move |v| v.map_or_else(String::new, |v| format!("{name} = {v}\n")))
    .boxed()
}

/// A `[header]` section with the given keys, present with probability `p`.
fn section(
    header: &'static str,
    keys: Vec<BoxedStrategy<String>>,
    p: f64,
) -> BoxedStrategy<String> {
    proptest::option::weighted(p.min(0.999), keys)
        .prop_map(move |keys| {
            keys.map_or_else(String::new, |k| format!("[{header}]\n{}", k.concat()))
        })
        .boxed()
}

const SECONDS: &[&str] = &["1", "0.001", "30", "1e-7", "10000000", "1e7", "9999999.9"];
const MILLIS: &[&str] = &["1", "500", "1e-3", "1e10", "10000000000"];
const COUNTS: &[&str] = &["1", "3", "60", "1000000", "1000000000000000"];
const SHARES: &[&str] = &["0", "1", "0.5", "1e-300", "0.999999"];
const NUMBERS: &[&str] = &["0", "1", "0.5", "1e10", "1e-300", "1e15"];
const BYTES: &[&str] = &["1", "64", "1048576", "17179869184"];
const THREADS: &[&str] = &["1", "2"];
const BOOLS: &[&str] = &["true", "false"];
const SEEDS: &[&str] = &["0", "1", "9223372036854775807"];

/// `[target]`: a kind, then that kind's keys (now and then another kind's).
fn target() -> BoxedStrategy<String> {
    let urls: &'static [&'static str] = &[
        "\"http://127.0.0.1:1\"",
        "\"http://localhost:8000/v1\"",
        "\"https://127.0.0.1\"",
        "\"http://[::1]:9/v1/\"",
        "\"http://127.0.0.1:65535/path?q=1\"",
        "\"http://127.0.0.1/v1/v1\"",
    ];
    let headers: &'static [&'static str] = &[
        "{ x-a = \"v\" }",
        "{ \"bad name\" = \"v\" }",
        "{ x-b = \"v\\u0001\" }",
        "{ x-c = { env = \"PATH\" } }",
        "{ x-c = { env = \"LLMBENCH_FUZZ_UNSET\" } }",
        "{ authorization = \"Bearer k\" }",
    ];
    let prices: &'static [&'static str] = &[
        "{ input_per_million = 1, output_per_million = 2 }",
        "{ input_per_million = 1e10, output_per_million = 1e10 }",
        "{ input_per_million = 0, output_per_million = 0 }",
    ];
    let common = move || {
        vec![
            key("model", &["\"m\"", "\"\"", "\"m\\nx\""], 1.0),
            key("api_key_env", &["\"LLMBENCH_FUZZ_UNSET\"", "\"PATH\""], 0.2),
            key("headers", headers, 0.2),
            key("price", prices, 0.3),
        ]
    };
    let mock = vec![
        key("kind", &["\"mock\""], 1.0),
        key("model", &["\"m\"", "\"\""], 0.3),
        key("api", &["\"chat\"", "\"completions\""], 0.3),
    ];
    let mut openai = common();
    openai.extend([
        key("kind", &["\"openai\""], 1.0),
        key("base_url", urls, 0.97),
        key("api", &["\"chat\"", "\"completions\""], 0.3),
        key("ignore_eos", BOOLS, 0.2),
    ]);
    let mut anthropic = common();
    anthropic.extend([
        key("kind", &["\"anthropic\""], 1.0),
        key("base_url", urls, 0.5),
        key("anthropic_version", &["\"2023-06-01\"", "\"\\n\""], 0.1),
    ]);
    let odd = vec![
        key("kind", &["\"Mock\"", "\"openai\""], 0.9),
        key(
            "base_url",
            &[
                "\"http://u:p@127.0.0.1\"",
                "\"ftp://127.0.0.1\"",
                "\"http://\"",
                "\"127.0.0.1\"",
            ],
            0.9,
        ),
        key("api_key_env", &["\"1X\"", "\"sk-abc\""], 0.3),
        key("model", &["\"m\""], 0.5),
    ];
    let keys = prop_oneof![4 => mock, 3 => openai, 2 => anthropic, 1 => odd];
    keys.prop_map(|k| format!("[target]\n{}", k.concat()))
        .boxed()
}
fn mock() -> BoxedStrategy<String> {
    let main = section(
        "mock",
        vec![
            dist_key("ttft_ms", 0.4),
            dist_key("itl_ms", 0.4),
            dist_key("output_tokens", 0.3),
            key("seed", SEEDS, 0.2),
            key("threads", THREADS, 0.2),
            key("models", &["[\"a\"]", "[]", "[\"\"]"], 0.1),
            key("max_body_bytes", BYTES, 0.2),
            key("header_timeout_s", SECONDS, 0.2),
            key("body_timeout_s", SECONDS, 0.2),
            key("max_connections", &["1", "16384", "1000000"], 0.2),
            key(
                "stall",
                &[
                    "{ at_s = 0, duration_s = 1 }",
                    "{ at_s = 1e7, duration_s = 1e7 }",
                ],
                0.2,
            ),
        ],
        0.5,
    );
    let rate_limit = section(
        "mock.rate_limit",
        vec![
            key("rpm", COUNTS, 0.4),
            key("tpm", COUNTS, 0.3),
            key("itpm", COUNTS, 0.3),
            key("otpm", COUNTS, 0.3),
            key("otpm_mode", &["\"reserve\"", "\"generated\""], 0.3),
            key("retry_after_ms", BOOLS, 0.2),
            key("quota_requests", COUNTS, 0.2),
        ],
        0.2,
    );
    let capacity = section(
        "mock.capacity",
        vec![
            key("max_concurrent", &["1", "8", "1000000"], 1.0),
            key("queue", &["0", "1", "10000000"], 0.4),
            key("queue_full_status", &["429", "503"], 0.3),
            key("overhead_ms", NUMBERS, 0.3),
            key("prefill_us_per_token", NUMBERS, 0.3),
            key("load_factor", NUMBERS, 0.3),
        ],
        0.2,
    );
    let faults = section(
        "mock.faults",
        vec![
            key("error_429", SHARES, 0.3),
            key("error_500", SHARES, 0.2),
            key("disconnect", SHARES, 0.2),
            key("stall", SHARES, 0.2),
            key("malformed", SHARES, 0.2),
            key("stall_s", SECONDS, 0.3),
        ],
        0.15,
    );
    (main, rate_limit, capacity, faults)
        .prop_map(|(a, b, c, d)| a + &b + &c + &d)
        .boxed()
}

/// `[workload]`. Request counts and rates stay small, so that drawing the items of an
/// accepted scenario is cheap; hostile values still reach every key.
fn workload() -> BoxedStrategy<String> {
    let arrivals: &'static [&'static str] = &[
        "{ kind = \"batch\" }",
        "{ kind = \"constant\", rate = 10 }",
        "{ kind = \"constant\", rate = 1e-7 }",
        "{ kind = \"poisson\", rate = 1000000 }",
        "{ kind = \"poisson\", rate = 1e-7 }",
        "{ kind = \"gamma\", rate = 5, burstiness = 1e-6 }",
        "{ kind = \"gamma\", rate = 1e-7, burstiness = 1e-6 }",
        "{ kind = \"gamma\", rate = 1000000, burstiness = 1000000 }",
        "{ kind = \"bursts\", size = 3, interval_s = 1e-7 }",
        "{ kind = \"bursts\", size = 10000000, interval_s = 1e7 }",
        "{ kind = \"ramp\", stages = [{ rate = 5, duration_s = 2 }] }",
        "{ kind = \"ramp\", start_rate = 1e-300, stages = [{ rate = 0, duration_s = 1e7 }] }",
        "{ kind = \"ramp\", stages = [{ rate = 1e-300, duration_s = 1e7 }, { rate = 0, duration_s = 1e-7 }] }",
        "{ kind = \"trace\", path = \"no-such-trace.csv\" }",
    ];
    section(
        "workload",
        vec![
            key("requests", &["1", "2", "7", "100"], 0.8),
            key("duration_s", &["1", "0.5", "1e-7", "10"], 0.4),
            key("arrival", arrivals, 0.6),
            key("seed", SEEDS, 0.3),
            key("stream", BOOLS, 0.3),
            dist_key("prompt_tokens", 0.4),
            dist_key("max_tokens", 0.4),
            key("cpu_work_us", &["1", "60000000"], 0.1),
            key("offload", BOOLS, 0.1),
            key("prompts", &["\"no-such-prompts.txt\""], 0.05),
        ],
        1.0,
    )
}

fn client() -> BoxedStrategy<String> {
    section(
        "client",
        vec![
            key("connect_timeout_s", SECONDS, 0.3),
            key("timeout_s", SECONDS, 0.3),
            key("idle_timeout_s", SECONDS, 0.3),
            key("max_event_bytes", BYTES, 0.3),
            key("max_body_bytes", BYTES, 0.3),
            key("warm_heap_mib", &["0", "1", "64", "4096"], 0.3),
        ],
        0.3,
    )
}

fn retry() -> BoxedStrategy<String> {
    let policy = |names: &'static [&'static str]| key("policy", names, 1.0);
    let keys = prop_oneof![
        vec![policy(&["\"none\""])],
        vec![
            policy(&["\"exponential\""]),
            key("max_attempts", COUNTS, 0.5),
            key("base_ms", MILLIS, 0.5),
            key("cap_ms", MILLIS, 0.5),
            key("max_retry_after_s", SECONDS, 0.5),
        ],
        vec![
            policy(&["\"openai-python\"", "\"anthropic-python\""]),
            key("max_attempts", COUNTS, 0.5),
            key("max_retry_after_s", SECONDS, 0.5),
        ],
    ];
    proptest::option::weighted(0.4, keys)
        .prop_map(|k| k.map_or_else(String::new, |k| format!("[retry]\n{}", k.concat())))
        .boxed()
}

fn slo_and_budget() -> BoxedStrategy<String> {
    let slo = section(
        "slo",
        vec![
            key("ttft_p99_ms", NUMBERS, 0.3),
            key("e2e_p99_ms", NUMBERS, 0.3),
            key("max_error_rate", SHARES, 0.3),
            key("min_throughput_rps", NUMBERS, 0.3),
        ],
        0.2,
    );
    let budget = section(
        "budget",
        vec![
            key("max_requests", COUNTS, 0.4),
            key("max_output_tokens", COUNTS, 0.4),
            key("max_cost", NUMBERS, 0.3),
        ],
        0.2,
    );
    (slo, budget).prop_map(|(a, b)| a + &b).boxed()
}

fn strategy_entry() -> BoxedStrategy<String> {
    let common = || {
        vec![
            key("max_queue", &["1", "10000000"], 0.2),
            key(
                "runtime",
                &["\"tokio-multi\"", "\"tokio-current\"", "\"tokio-uring\""],
                0.3,
            ),
            key("workers", &["1", "1024"], 0.2),
            key("client", &["\"reqwest\"", "\"hyper\""], 0.3),
            key("label", &["\"a\"", "\"a-1\"", "\"a.b\""], 0.2),
        ]
    };
    let mut capped = common();
    capped.extend([
        key("kind", &["\"semaphore\"", "\"joinset\""], 1.0),
        key(
            "limit",
            &["1", "4", "1000000", "[1, 2, 4]", "[1000000]", "[2, 1]"],
            0.97,
        ),
    ]);
    let mut uncapped = common();
    uncapped.push(key("kind", &["\"serial\"", "\"join_all\""], 1.0));
    prop_oneof![capped, uncapped]
        .prop_map(|k| format!("[[strategy]]\n{}", k.concat()))
        .boxed()
}

/// A whole scenario in the README's layout, with values from the edges.
fn scenario_text() -> BoxedStrategy<String> {
    (
        key("name", &["\"fuzz\"", "\"a.b-c_d\""], 1.0),
        key("description", &["\"d\""], 0.2),
        target(),
        mock(),
        workload(),
        client(),
        retry(),
        slo_and_budget(),
        proptest::collection::vec(strategy_entry(), 1..4),
    )
        .prop_map(|(name, description, t, m, w, c, r, sb, strategies)| {
            // Top-level keys come before any table.
            format!(
                "{name}{description}{t}{m}{w}{c}{r}{sb}{}",
                strategies.concat()
            )
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// What must not panic on an accepted scenario

/// About how many items the scenario draws, from above; `None` when it cannot say.
fn items_bound(scenario: &Scenario) -> Option<f64> {
    let workload = scenario.workload();
    let requests = workload.requests.map(|n| n.0 as f64);
    let expected = workload
        .arrival
        .expected_arrivals(workload.duration_s)
        .map(|n| n * 2.0 + 100.0);
    match (requests, expected) {
        (Some(r), Some(e)) => Some(r.min(e)),
        (r, e) => r.or(e),
    }
}

/// Mock servers started so far: each spawns threads, so a few suffice.
static MOCKS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// Exchanges the retry policy is asked about: each failure class, statuses at the
/// edges, and hints from none to the longest a `Duration` holds.
fn hostile_exchanges() -> Vec<Exchange> {
    let now = Instant::now();
    let hints = [
        None,
        Some(Duration::ZERO),
        Some(Duration::from_nanos(1)),
        Some(Duration::from_secs(999_999)),
        Some(Duration::from_secs(u64::MAX)),
        Some(Duration::MAX),
    ];
    let failures = [
        (Some(429), ErrorClass::RateLimited),
        (Some(503), ErrorClass::ServerError),
        (Some(u16::MAX), ErrorClass::ServerError),
        (Some(0), ErrorClass::ClientError),
        (None, ErrorClass::Connect),
        (None, ErrorClass::Timeout),
        (Some(200), ErrorClass::Protocol),
    ];
    let mut out = Vec::new();
    for hint in hints {
        for (status, class) in failures {
            for should_retry in [None, Some(true), Some(false)] {
                let mut exchange = Exchange::new(now);
                exchange.status = status;
                exchange.error = Some((class, "x".into()));
                exchange.retry_after = hint;
                exchange.should_retry = should_retry;
                out.push(exchange);
            }
        }
    }
    out
}

/// Runs every step after parsing that must accept whatever the parser accepted.
fn exercise(scenario: &Scenario) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // Work items and the plan, when drawing them is cheap enough for a test.
    if items_bound(scenario).is_some_and(|n| n <= 20_000.0) {
        if let Ok(items) = llmbench::workload::load(scenario) {
            let plan = Plan::of(scenario, &items);
            let _ = plan.to_string();
            let heap =
                llmbench::plan::heap_to_warm(scenario, scenario.strategies(), items.len() as u64);
            assert!(heap <= 4096 << 20, "{heap} bytes to warm");
            // A synthetic prompt is one word per token: keep to the short ones.
            for item in items.iter().filter(|i| i.prompt_tokens < 10_000).take(3) {
                let _ = item.prompt_text();
            }
        }
    }
    for strategy in scenario.strategies() {
        let _ = strategy.label();
        let _ = strategy.build();
    }
    // The mock's distributions, and the workload's.
    let mock = &scenario.mock;
    for _ in 0..20 {
        let _ = mock.ttft_ms.sample(&mut rng);
        let _ = mock.itl_ms.sample(&mut rng);
        if let Some(tokens) = &mock.output_tokens {
            let _ = tokens.sample(&mut rng);
        }
        let _ = scenario.workload().prompt_tokens().sample(&mut rng);
        let _ = scenario.workload().max_tokens().sample(&mut rng);
    }
    for exchange in hostile_exchanges() {
        for attempt in [0, 1, 2, 30, 31, u32::MAX] {
            let _ = scenario.retry.decide(&exchange, attempt, &mut rng);
        }
    }
    // The client, without traffic.
    let endpoint = match &scenario.target {
        Target::Mock { model, api } => {
            Some(Endpoint::mock("http://127.0.0.1:9".into(), model, *api))
        }
        live => Endpoint::live(live, scenario.folder()).ok(),
    };
    if let Some(endpoint) = endpoint {
        for strategy in scenario.strategies() {
            let sockets = match strategy.runtime {
                llmbench::scenario::RuntimeKind::TokioUring => Sockets::IoUring,
                _ => Sockets::Tokio,
            };
            let stream = scenario.workload().stream;
            let carrier = llmbench::client::Carrier {
                library: strategy.library(),
                sockets,
                http2: strategy.http2,
            };
            let _ = Client::new(&endpoint, &scenario.client, stream, carrier);
        }
    }
    // The mock itself, started and dropped: a few times only, it spawns threads.
    if matches!(scenario.target, Target::Mock { .. })
        && MOCKS_STARTED.fetch_add(1, Ordering::Relaxed) < 6
    {
        let server = llmbench::mock::MockServer::start_local(mock.clone(), scenario.mock_seed());
        drop(server);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text: an error or a scenario, never a panic.
    #[test]
    fn the_parser_never_panics_on_any_text(src in "\\PC{0,400}") {
        let _ = Scenario::parse(&src, "fuzz.toml");
    }

    /// Any bytes, read as text the way a file is (lossily, as `validate` reports them).
    #[test]
    fn the_parser_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Scenario::parse(&String::from_utf8_lossy(&bytes), "fuzz.toml");
    }

    /// A scenario with every piece of TOML syntax mixed at random.
    #[test]
    fn the_parser_never_panics_on_toml_shaped_noise(
        src in proptest::collection::vec(
            select(&[
                "[", "]", "[[", "]]", "{", "}", "=", ",", ".", "\"", "'", "\"\"\"", "\n", " ",
                "#", "name", "target", "kind", "workload", "strategy", "limit", "mock", "1",
                "-1", "1e300", "nan", "inf", "true", "dist", "\"mock\"", "\"serial\"", "\\",
                "\\u", "0x7f", "1979-05-27", "T07:32:00", "Z", "+",
            ][..]),
            0..120,
        ).prop_map(|tokens| tokens.concat())
    ) {
        let _ = Scenario::parse(&src, "fuzz.toml");
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Scenarios in the README's layout with values from the edges: whatever parses is
    /// usable by every later step without a panic.
    #[test]
    fn accepted_scenarios_never_panic_downstream(src in scenario_text()) {
        if let Ok(scenario) = Scenario::parse(&src, "fuzz.toml") {
            exercise(&scenario);
        }
    }
}

// ---------------------------------------------------------------------------------------
// SSE

/// Pieces of SSE streams.
const SSE_PIECES: &[&[u8]] = &[
    b"data",
    b"data:",
    b"data: ",
    b"event:",
    b"event: ping",
    b":",
    b"id: 1",
    b"retry: 5",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\xef\xbb\xbf",
    b"{\"a\":1}",
    b"[DONE]",
    b"\xff",
    b"\xc3",
    b"\xa9",
    b" ",
    b"x",
];

/// SSE-shaped bytes: field names, separators, line ends of every kind, a BOM, and noise.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        select(SSE_PIECES).prop_map(<[u8]>::to_vec),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

/// Feeds `input` in the given pieces; the events, and whether the limit was hit. After
/// every read, the parser holds at most its limit plus that read.
fn feed_in_pieces(limit: usize, input: &[u8], cuts: &[usize]) -> (Vec<(String, String)>, bool) {
    let mut parser = SseParser::with_limit(limit);
    let mut events = Vec::new();
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(input.len());
    for end in ends {
        let piece = &input[start..end.max(start)];
        start = end.max(start);
        let fed = parser.feed(piece, |e: SseEvent<'_>| {
            events.push((e.event.to_string(), e.data.to_string()))
        });
        assert!(
            parser.buffered() <= limit.saturating_add(piece.len()),
            "holds {} bytes after a read of {} with a limit of {limit}",
            parser.buffered(),
            piece.len()
        );
        if fed.is_err() {
            return (events, true);
        }
        let _ = parser.has_pending();
    }
    (events, false)
}

proptest! {
    #![proptest_config(config(2048))]

    /// However the stream is cut, the parser gives the events the whole stream gives,
    /// and never a panic.
    #[test]
    fn sse_events_do_not_depend_on_where_reads_split(
        input in sse_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = feed_in_pieces(usize::MAX, &input, &[]);
        let split = feed_in_pieces(usize::MAX, &input, &cuts);
        prop_assert!(!whole.1 && !split.1);
        prop_assert_eq!(whole.0, split.0);
    }

    /// With a limit, the parser fails rather than hold more than the limit plus the read
    /// it is given; when it does not fail, it agrees with an unlimited parser.
    #[test]
    fn sse_memory_stays_within_the_limit(
        input in sse_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        limit in 0usize..64,
    ) {
        let unlimited = feed_in_pieces(usize::MAX, &input, &cuts);
        let (events, failed) = feed_in_pieces(limit, &input, &cuts);
        if !failed {
            prop_assert_eq!(&events, &unlimited.0);
        }
        // Every event handed out fits the limit (its data; the line being read counts too).
        for (_, data) in &events {
            prop_assert!(data.len() <= limit, "event of {} bytes past a limit of {limit}", data.len());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Wire adapters

/// JSON-ish text: fragments of the providers' frames, mixed with noise.
fn json_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        select(
            &[
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"",
                "null",
                "true",
                "0",
                "-1",
                "1e400",
                "4294967296",
                "18446744073709551616",
                "\"choices\"",
                "\"delta\"",
                "\"content\"",
                "\"text\"",
                "\"usage\"",
                "\"completion_tokens\"",
                "\"prompt_tokens\"",
                "\"total_tokens\"",
                "\"output_tokens\"",
                "\"error\"",
                "\"message\"",
                "\"type\"",
                "\"content_block_delta\"",
                "\"message_delta\"",
                "\"message_stop\"",
                "\"text_delta\"",
                "\"index\"",
                "\"x\"",
                "\"\\ud800\"",
                "\"\\u0000\"",
                "[DONE]",
            ][..]
        )
        .prop_map(str::to_string),
        "\\PC{0,6}",
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat()),
        Just(r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":4294967295,"total_tokens":0}}"#.to_string()),
        Just(r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":4294967295}}"#.to_string()),
        Just(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
        Just(format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000))),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Every adapter reads any event and any body into a summary or an error.
    #[test]
    fn wire_adapters_never_panic(
        data in json_ish(),
        name in select(&[
            "message", "content_block_delta", "message_delta", "message_stop", "error", "ping",
        ][..]),
    ) {
        let adapters: [Box<dyn WireAdapter>; 3] = [
            Box::new(OpenAiChat { model: "m".into(), exact_length: false }),
            Box::new(OpenAiCompletions { model: "m".into(), exact_length: true }),
            Box::new(AnthropicMessages { model: "m".into() }),
        ];
        for adapter in &adapters {
            let _ = adapter.stream_event(SseEvent { event: name, data: &data });
            let _ = adapter.whole_body(data.as_bytes());
        }
    }
}
