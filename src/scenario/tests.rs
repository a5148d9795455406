use super::*;

const VALID: &str = r#"
name = "t"
[target]
kind = "mock"
[workload]
requests = 3
[[strategy]]
kind = "serial"
[[strategy]]
kind = "semaphore"
limit = 2
"#;

fn error_of(src: &str) -> String {
    match Scenario::parse(src, "s.toml") {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn valid_scenario_gets_defaults_and_labels() {
    let s = Scenario::parse(VALID, "s.toml").unwrap();
    let labels: Vec<_> = s.strategies().map(|c| c.label()).collect();
    assert_eq!(labels, ["serial", "semaphore-2"]);
    assert!(s.workload().stream);
    assert_eq!(s.target.model(), "llmbench-mock");
    assert!(s.mock.rate_limit.rpm.is_none());
}

#[test]
fn zero_limit_names_file_line_column_and_key() {
    let src = VALID.replace("limit = 2", "limit = 0");
    let err = error_of(&src);
    assert!(
        err.starts_with("s.toml:11:9: strategy[1].limit: must be a number of requests in flight from 1 to 1,000,000, got 0"),
        "{err}"
    );
    assert!(err.contains("11 | limit = 0"), "excerpt missing: {err}");
}

#[test]
fn negative_count_is_rejected() {
    let err = error_of(&VALID.replace("requests = 3", "requests = -5"));
    assert!(
        err.contains(
            ":6:12: workload.requests: must be a number of requests from 1 to 10,000,000, got -5"
        ),
        "{err}"
    );
}

#[test]
fn unknown_key_is_named_with_the_expected_ones() {
    let err = error_of(&VALID.replace("requests = 3", "requests = 3\nrequets = 4"));
    assert!(
        err.contains("s.toml:7:1: workload.requets: unknown field `requets`"),
        "{err}"
    );
    assert!(err.contains("expected one of"), "{err}");
}

#[test]
fn wrong_type_says_what_is_expected() {
    let err = error_of(&VALID.replace("requests = 3", "requests = \"many\""));
    assert!(
        err.contains("workload.requests: invalid type: string \"many\""),
        "{err}"
    );
    let err = error_of(&VALID.replace("kind = \"serial\"", "kind = \"serial\"\nlabel = 3"));
    assert!(
        err.contains("strategy[0].label: invalid type: integer `3`"),
        "{err}"
    );
}

#[test]
fn syntax_error_has_a_position() {
    let err = error_of("name = \"t\"\n[target\nkind = \"mock\"\n");
    assert!(err.starts_with("s.toml:2:"), "{err}");
}

#[test]
fn unknown_strategy_kind_lists_the_known_ones() {
    let err = error_of(&VALID.replace("kind = \"serial\"", "kind = \"gather\""));
    assert!(err.contains("unknown variant `gather`"), "{err}");
    assert!(
        err.contains("`join_all`") && err.contains("`joinset`"),
        "{err}"
    );
}

#[test]
fn limit_is_required_where_it_applies_and_refused_elsewhere() {
    let err = error_of(&VALID.replace("limit = 2", ""));
    assert!(
        err.contains("s.toml:9:1: strategy[1]: strategy kind \"semaphore\" needs `limit`"),
        "{err}"
    );
    let err = error_of(&VALID.replace("kind = \"serial\"", "kind = \"serial\"\nlimit = 3"));
    assert!(
        err.contains("s.toml:7:1: strategy[0]: strategy kind \"serial\" takes no `limit`"),
        "{err}"
    );
}

#[test]
fn duplicate_labels_are_rejected() {
    let src = format!("{VALID}\n[[strategy]]\nkind = \"serial\"\n");
    let err = error_of(&src);
    assert!(
        err.contains("strategy[2].label: label \"serial\" is used by an earlier strategy"),
        "{err}"
    );
}

#[test]
fn no_strategies_is_an_error() {
    let src = VALID.split("[[strategy]]").next().unwrap();
    assert!(error_of(src).contains("add at least one [[strategy]]"));
}

#[test]
fn unusable_names_are_rejected() {
    let err = error_of(&VALID.replace("name = \"t\"", "name = \"a/b\""));
    assert!(
        err.contains("s.toml:2:8: name: \"a/b\" is not a usable name"),
        "{err}"
    );
}

#[test]
fn bad_distribution_is_located() {
    let src = VALID.replace(
        "[workload]",
        "[mock]\nttft_ms = { dist = \"uniform\", min = 5, max = 1 }\n[workload]",
    );
    let err = error_of(&src);
    assert!(
        err.contains("mock.ttft_ms: `min` (5) must not exceed `max` (1)"),
        "{err}"
    );
}

#[test]
fn missing_file_names_it() {
    let err = Scenario::load(Path::new("no/such.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read scenario file no/such.toml:"),
        "{err}"
    );
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn workload_bounds_are_checked() {
    let with = |workload: &str| VALID.replace("requests = 3", workload);
    let err = error_of(&with("seed = 1"));
    assert!(
        err.contains("s.toml:5:1: workload: a batch needs `requests`"),
        "{err}"
    );
    let err = error_of(&with("requests = 3\nduration_s = 5"));
    assert!(
        err.contains("workload: `duration_s` does not apply to a batch"),
        "{err}"
    );
    let err = error_of(&with("arrival = { kind = \"poisson\", rate = 5 }"));
    assert!(
        err.contains("workload: an open-ended arrival schedule needs a bound"),
        "{err}"
    );
    let err = error_of(&with(
        "arrival = { kind = \"poisson\", rate = 0 }\nrequests = 3",
    ));
    // The position points at the table; the message names the key inside it.
    assert!(
        err.contains(":6:11: workload.arrival: `rate`: must be a rate per second from 0.0000001 to 1,000,000, got 0"),
        "{err}"
    );
    let err = error_of(&with(
        "arrival = { kind = \"poisson\", rate = inf }\nrequests = 3",
    ));
    assert!(
        err.contains("workload.arrival: `rate`: must be a rate per second from 0.0000001 to 1,000,000, got inf"),
        "{err}"
    );
    let err = error_of(&with("arrival = { kind = \"ramp\", stages = [] }"));
    assert!(
        err.contains("workload: arrival: a ramp needs at least one stage"),
        "{err}"
    );
    let ok = with("arrival = { kind = \"ramp\", stages = [{ rate = 5, duration_s = 2 }] }");
    Scenario::parse(&ok, "s.toml").unwrap();
}

#[test]
fn slo_values_are_checked_where_they_are_written() {
    let err = error_of(&format!("{VALID}\n[slo]\nmax_error_rate = 2\n"));
    assert!(
        err.contains("s.toml:14:18: slo.max_error_rate: must be a share from 0 to 1"),
        "{err}"
    );
    let err = error_of(&format!("{VALID}\n[slo]\ne2e_p99 = 5\n"));
    assert!(
        err.contains("slo.e2e_p99: unknown field `e2e_p99`"),
        "{err}"
    );
}

#[test]
fn target_headers_are_checked_when_the_scenario_is_read() {
    let live = VALID.replace(
        "kind = \"mock\"",
        "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nheaders = { \"bad header\" = \"v\" }",
    );
    let err = error_of(&live);
    assert!(
        err.starts_with("s.toml:3:1: target: `headers`: \"bad header\" is not a valid header name"),
        "{err}"
    );
}

#[test]
fn a_limit_list_is_a_sweep_of_one_strategy_per_value() {
    let src = VALID.replace("limit = 2", "limit = [1, 4, 16]");
    let s = Scenario::parse(&src, "s.toml").unwrap();
    let labels: Vec<_> = s.strategies().map(|c| c.label()).collect();
    assert_eq!(
        labels,
        ["serial", "semaphore-1", "semaphore-4", "semaphore-16"]
    );
    let limits: Vec<_> = s.strategies().map(|c| c.limit().map(|l| l.0)).collect();
    assert_eq!(limits, [None, Some(1), Some(4), Some(16)]);

    let named = src.replace("limit = [1, 4, 16]", "limit = [2, 8]\nlabel = \"pool\"");
    let s = Scenario::parse(&named, "s.toml").unwrap();
    let labels: Vec<_> = s.strategies().map(|c| c.label()).collect();
    assert_eq!(labels, ["serial", "pool-2", "pool-8"]);
}

#[test]
fn bad_sweeps_are_located_and_explained() {
    let err = error_of(&VALID.replace("limit = 2", "limit = []"));
    assert!(
        err.starts_with("s.toml:11:9: strategy[1].limit: an empty sweep"),
        "{err}"
    );
    let err = error_of(&VALID.replace("limit = 2", "limit = [4, 0]"));
    assert!(
        err.contains("strategy[1].limit[1]: must be a number of requests in flight from 1 to 1,000,000, got 0"),
        "{err}"
    );
    let err = error_of(&VALID.replace("limit = 2", "limit = [4, 4]"));
    assert!(err.contains("4 appears twice in the sweep"), "{err}");
    let err = error_of(&VALID.replace("limit = 2", "limit = \"many\""));
    assert!(err.contains("a list of them (a sweep)"), "{err}");
    // A sweep beside an entry that already has one of its labels: the later table is named.
    let clash = format!("{VALID}[[strategy]]\nkind = \"semaphore\"\nlimit = [8, 2]\n");
    let err = error_of(&clash);
    assert!(
        err.contains("strategy[2].label: label \"semaphore-2\""),
        "{err}"
    );
}

#[test]
fn quota_strategies_take_their_own_keys_and_get_defaults() {
    let src = format!(
        "{VALID}[[strategy]]\nkind = \"rate\"\nrpm = 600\ntpm = 90000\n[[strategy]]\nkind = \"rate\"\nitpm = 1000\nheadroom = 0.5\nlimit = 8\n[[strategy]]\nkind = \"adaptive\"\n[[strategy]]\nkind = \"adaptive\"\nsignal = \"latency\"\nlimit = 64\ninitial_limit = 2\n"
    );
    let s = Scenario::parse(&src, "s.toml").unwrap();
    let strategies: Vec<_> = s.strategies().collect();
    let labels: Vec<_> = strategies.iter().map(|c| c.label()).collect();
    assert_eq!(
        labels,
        [
            "serial",
            "semaphore-2",
            "rate",
            "rate-8",
            "adaptive",
            "adaptive-latency-64"
        ]
    );
    assert_eq!(strategies[2].headroom(), RATE_HEADROOM);
    assert_eq!(strategies[2].rpm.map(|r| r.0), Some(600));
    assert_eq!(strategies[3].headroom(), 0.5);
    assert_eq!(strategies[2].in_flight_cap(), None);
    assert_eq!(strategies[3].in_flight_cap(), Some(8));
    assert_eq!(strategies[4].in_flight_cap(), Some(ADAPTIVE_CEILING));
    assert_eq!(strategies[4].start_limit(), ADAPTIVE_INITIAL_LIMIT);
    assert_eq!(strategies[4].signal, None);
    assert_eq!(strategies[5].start_limit(), 2);
    assert_eq!(strategies[5].signal, Some(AdaptiveSignal::Latency));
}

#[test]
fn quota_keys_are_refused_by_name_where_they_do_not_apply() {
    let with = |strategy: &str| format!("{VALID}[[strategy]]\n{strategy}\n");
    for (strategy, expected) in [
        (
            "kind = \"semaphore\"\nlimit = 4\nrpm = 60",
            "strategy[2].rpm: `rpm` applies to strategy kind \"rate\" only, not \"semaphore\"",
        ),
        (
            "kind = \"adaptive\"\nheadroom = 0.9",
            "strategy[2].headroom: `headroom` applies to strategy kind \"rate\" only, not \"adaptive\"",
        ),
        (
            "kind = \"rate\"\nrpm = 60\nsignal = \"latency\"",
            "strategy[2].signal: `signal` applies to strategy kind \"adaptive\" only, not \"rate\"",
        ),
        (
            "kind = \"join_all\"\ninitial_limit = 3",
            "strategy[2].initial_limit: `initial_limit` applies to strategy kind \"adaptive\" only",
        ),
        (
            "kind = \"rate\"",
            "strategy[2]: strategy kind \"rate\" needs a quota to pace itself to: at least one of `rpm`, `tpm`, `itpm`, `otpm`",
        ),
        (
            "kind = \"adaptive\"\nlimit = 8\ninitial_limit = 16",
            "strategy[2].initial_limit: 16 is above `limit` (8)",
        ),
        (
            "kind = \"rate\"\nrpm = 60\nheadroom = 0",
            "strategy[2].headroom: must be a share of the quota greater than 0 and at most 1, got 0",
        ),
        (
            "kind = \"rate\"\nrpm = 60\nheadroom = 1.5",
            "strategy[2].headroom: must be a share of the quota greater than 0 and at most 1, got 1.5",
        ),
        (
            "kind = \"rate\"\nrpm = 0",
            "strategy[2].rpm: must be a whole number from 1 to",
        ),
        (
            "kind = \"adaptive\"\nsignal = \"vibes\"",
            "strategy[2].signal: unknown variant `vibes`, expected `rate_limit` or `latency`",
        ),
    ] {
        let err = error_of(&with(strategy));
        assert!(err.contains(expected), "{strategy}:\n{err}");
    }
}

#[test]
fn cache_and_shared_prefix_keys_are_checked_where_they_are_written() {
    let mocked = |mock: &str| format!("{VALID}[mock]\n{mock}\n");
    let ok = Scenario::parse(
        &mocked("cache = { mode = \"prefix\", ttl_s = 60 }"),
        "s.toml",
    )
    .unwrap();
    let cache = ok.mock.cache.unwrap();
    assert_eq!((cache.mode, cache.min_tokens.0), (CacheMode::Prefix, 1024));
    let err = error_of(&mocked("cache = { mode = \"lru\" }"));
    assert!(
        err.contains("mock.cache.mode: unknown variant `lru`, expected `hit_rate` or `prefix`"),
        "{err}"
    );
    let err = error_of(&mocked("cache = { hit_rate = 1.5 }"));
    assert!(
        err.contains("mock.cache.hit_rate: must be a share from 0 to 1, got 1.5"),
        "{err}"
    );
    let with = |workload: &str| VALID.replace("requests = 3", workload);
    let err = error_of(&with("requests = 3\nshared_prefix_tokens = -1"));
    assert!(
        err.contains(
            "workload.shared_prefix_tokens: must be a number of tokens from 0 to 10,000,000, got -1"
        ),
        "{err}"
    );
    let err = error_of(&with(
        "requests = 3\nshared_prefix_tokens = 5\nprompts = \"p.txt\"",
    ));
    assert!(
        err.contains("workload: `shared_prefix_tokens` applies to synthetic prompts only"),
        "{err}"
    );
}

#[test]
fn cache_keys_of_the_other_mode_are_refused_naming_key_value_and_mode() {
    let mocked = |cache: &str| format!("{VALID}[mock.cache]\n{cache}\n");
    for (cache, expected) in [
        (
            "ttl_s = 60",
            "mock.cache: `ttl_s = 60` applies to `mode = \"prefix\"` only, and this cache's mode is \"hit_rate\" (the default): a `hit_rate` cache holds no prefixes, it draws each request's hit; remove `ttl_s`, or set `mode = \"prefix\"`",
        ),
        (
            "mode = \"hit_rate\"\nmax_entries = 10",
            "mock.cache: `max_entries = 10` applies to `mode = \"prefix\"` only, and this cache's mode is \"hit_rate\":",
        ),
        (
            "mode = \"prefix\"\nhit_rate = 0.5",
            "mock.cache: `hit_rate = 0.5` applies to `mode = \"hit_rate\"` only, and this cache's mode is \"prefix\": a `prefix` cache hits when a held prefix matches, not by chance; remove `hit_rate`, or set `mode = \"hit_rate\"`",
        ),
        (
            "mode = \"prefix\"\nttl_s = 0",
            "mock.cache.ttl_s: must be a number of seconds greater than 0 and at most 10,000,000, got 0",
        ),
        (
            "mode = \"prefix\"\nmax_entries = 0",
            "mock.cache.max_entries: must be a whole number from 1 to 1e15, got 0",
        ),
    ] {
        let err = error_of(&mocked(cache));
        assert!(err.contains(expected), "{cache}:\n{err}");
    }
    // Each mode's own keys, and the keys both read, are taken; what it is written as
    // reads back.
    for cache in [
        "mode = \"prefix\"\nttl_s = 60\nmax_entries = 10\nmin_tokens = 0\nttft_saving = 0",
        "hit_rate = 0\nmin_tokens = 128\nttft_saving = 1",
    ] {
        let parsed = Scenario::parse(&mocked(cache), "s.toml").unwrap();
        let config = parsed.mock.cache.unwrap();
        let written = toml::to_string(&config).unwrap();
        let read: CacheConfig = toml::from_str(&written).unwrap();
        assert_eq!(read, config, "{written}");
    }
}
