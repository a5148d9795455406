//! The bad-input matrix: every kind of input a hostile or careless user gives, through
//! the real binary. Each case must end with exit 2 and a message naming the key (or the
//! file and line) and what is expected, never a panic (101) or an abort (134).

mod common;

/// One case: what to change in a small valid scenario, and words the error must hold.
struct Case {
    /// Lines for `[target]` (after `kind`), `[workload]`, the one `[[strategy]]`, and
    /// extra tables at the end.
    target: &'static str,
    workload: &'static str,
    strategy: &'static str,
    extra: &'static str,
    says: &'static [&'static str],
}

const fn case(
    target: &'static str,
    workload: &'static str,
    strategy: &'static str,
    extra: &'static str,
    says: &'static [&'static str],
) -> Case {
    Case {
        target,
        workload,
        strategy,
        extra,
        says,
    }
}

const MOCK: &str = "kind = \"mock\"";
const BATCH: &str = "requests = 4";
const SERIAL: &str = "kind = \"serial\"";

/// Every number that becomes a duration, a rate, a count or an allocation, at values
/// that once panicked or hung, and the smaller mistakes the hardening review listed.
const CASES: &[Case] = &[
    // Durations far past any run.
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\ntimeout_s = 1e300",
        &["client.timeout_s", "a number of seconds", "1e300"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\nconnect_timeout_s = inf",
        &["client.connect_timeout_s", "got inf"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\nidle_timeout_s = nan",
        &["client.idle_timeout_s", "got NaN"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nttft_ms = 1e300",
        &["mock.ttft_ms", "must be a number from 0 to"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nitl_ms = { dist = \"lognormal\", median = 10, p99 = 1e300 }",
        &["mock.itl_ms", "`p99`"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nstall = { at_s = 1e300, duration_s = 1 }",
        &["mock.stall.at_s", "a number of seconds"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nstall = { at_s = 0, duration_s = 1e300 }",
        &["mock.stall.duration_s"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nfaults = { stall_s = 1e300 }",
        &["mock.faults.stall_s"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\ncapacity = { max_concurrent = 2, overhead_ms = 1e300 }",
        &["mock.capacity.overhead_ms"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\ncapacity = { max_concurrent = 2, load_factor = -1 }",
        &["mock.capacity.load_factor", "got -1"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[retry]\npolicy = \"exponential\"\nbase_ms = 1e300",
        &["retry", "`base_ms`", "a number of milliseconds"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[retry]\npolicy = \"anthropic-python\"\nmax_retry_after_s = 1e300",
        &["`max_retry_after_s`"],
    ),
    // Rates and schedules.
    case(
        MOCK,
        "arrival = { kind = \"poisson\", rate = 1e-300 }\nrequests = 4",
        SERIAL,
        "",
        &["`rate`", "a rate per second"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"constant\", rate = 1e300 }\nrequests = 4",
        SERIAL,
        "",
        &["`rate`", "1,000,000"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"constant\", rate = 1000000 }\nduration_s = 100",
        SERIAL,
        "",
        &["workload", "offers about 100000000", "set `requests`"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"ramp\", stages = [{ rate = 1, duration_s = 1e300 }] }",
        SERIAL,
        "",
        &["`stages[0].duration_s`"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"ramp\", stages = [{ rate = 1e300, duration_s = 1 }] }",
        SERIAL,
        "",
        &["stages[0].rate must be a rate from 0 to"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"bursts\", size = 1, interval_s = 0 }\nrequests = 4",
        SERIAL,
        "",
        &["`interval_s`"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"trace\", path = \"t.csv\", time_scale = 1e300 }",
        SERIAL,
        "",
        &["`time_scale`", "a factor"],
    ),
    // Counts that become allocations or threads.
    case(
        MOCK,
        "requests = 9223372036854775807",
        SERIAL,
        "",
        &["workload.requests", "from 1 to 10,000,000"],
    ),
    case(
        MOCK,
        "requests = 100000000",
        SERIAL,
        "",
        &["workload.requests", "from 1 to 10,000,000"],
    ),
    case(
        MOCK,
        "requests = 99999999999999999999",
        SERIAL,
        "",
        &["workload.requests", "expected a whole number"],
    ),
    case(
        MOCK,
        "requests = 1e8",
        SERIAL,
        "",
        &[
            "workload.requests",
            "floating point",
            "expected a whole number",
        ],
    ),
    case(
        MOCK,
        "requests = two",
        SERIAL,
        "",
        &["requests = two", "text in quotes"],
    ),
    case(
        MOCK,
        BATCH,
        "kind = \"semaphore\"\nlimit = 4611686018427387904",
        "",
        &["strategy[0].limit", "1,000,000"],
    ),
    case(
        MOCK,
        BATCH,
        "kind = \"joinset\"\nlimit = [1, 0]",
        "",
        &["strategy[0].limit[1]"],
    ),
    case(
        MOCK,
        BATCH,
        "kind = \"serial\"\nworkers = 100000",
        "",
        &["strategy[0].workers", "a number of threads from 1 to 1,024"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nthreads = 100000",
        &["mock.threads", "1,024"],
    ),
    case(
        MOCK,
        BATCH,
        "kind = \"serial\"\nmax_queue = 0",
        "",
        &["strategy[0].max_queue"],
    ),
    case(
        MOCK,
        "requests = 4\nprompt_tokens = 1e12",
        SERIAL,
        "",
        &["workload.prompt_tokens", "from 0 to 10000000"],
    ),
    case(
        MOCK,
        "requests = 4\nmax_tokens = { dist = \"uniform\", min = 1, max = 1e300 }",
        SERIAL,
        "",
        &["workload.max_tokens", "`max`"],
    ),
    case(
        MOCK,
        "requests = 4\ncpu_work_us = 9223372036854775807",
        SERIAL,
        "",
        &["workload.cpu_work_us", "60,000,000"],
    ),
    // Heap to warm past its cap, or below nothing.
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\nwarm_heap_mib = 5000",
        &[
            "client.warm_heap_mib",
            "a number of MiB from 0 to 4,096",
            "5000",
        ],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\nwarm_heap_mib = -3",
        &["client.warm_heap_mib", "a number of MiB", "-3"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[client]\nmax_event_bytes = 0",
        &["client.max_event_bytes", "a number of bytes"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\ncapacity = { max_concurrent = 2, queue = -1 }",
        &["mock.capacity.queue", "queue length"],
    ),
    case(
        MOCK,
        BATCH,
        SERIAL,
        "[mock]\nfaults = { error_500 = 1.5 }",
        &["mock.faults.error_500", "a share from 0 to 1"],
    ),
    case(
        MOCK,
        "requests = 4\nseed = -1",
        SERIAL,
        "",
        &["workload.seed", "a whole number of 0 or more"],
    ),
    // Live targets: credentials, prices, header text.
    case(
        "kind = \"openai\"\nbase_url = \"http://user:hunter2@127.0.0.1:9\"\nmodel = \"m\"",
        BATCH,
        SERIAL,
        "",
        &["`base_url`", "holds credentials", "[redacted]"],
    ),
    case(
        "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nprice = { input_per_million = -1, output_per_million = 1 }",
        BATCH,
        SERIAL,
        "",
        &["input_per_million", "got -1"],
    ),
    case(
        "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nprice = { input_per_million = nan, output_per_million = 1 }",
        BATCH,
        SERIAL,
        "",
        &["input_per_million", "got NaN"],
    ),
    case(
        "kind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nanthropic_version = \"2023-06-01\\r\\nx-evil: 1\"",
        BATCH,
        SERIAL,
        "",
        &["`anthropic_version`", "without line breaks"],
    ),
    // Traces.
    case(
        MOCK,
        "arrival = { kind = \"trace\", path = \"nan.csv\" }",
        SERIAL,
        "",
        &["nan.csv:2", "is not a number of seconds"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"trace\", path = \"mixed.csv\" }",
        SERIAL,
        "",
        &["mixed.csv:3", "date-time"],
    ),
    case(
        MOCK,
        "arrival = { kind = \"trace\", path = \"t.csv\" }\nprompt_tokens = 9",
        SERIAL,
        "",
        &["`prompt_tokens` does not apply to a trace"],
    ),
];

/// The files the cases name, written beside each scenario.
const FILES: &[(&str, &str)] = &[
    ("t.csv", "time,prompt_tokens,output_tokens\n0,5,5\n1,5,5\n"),
    ("nan.csv", "time,prompt_tokens,output_tokens\nnan,5,5\n"),
    (
        "mixed.csv",
        "time,prompt_tokens,output_tokens\n1700000000,5,5\n2023-11-16 18:15:46,5,5\n",
    ),
];

fn scenario(c: &Case) -> String {
    format!(
        "name = \"bad\"\n[target]\n{}\n[workload]\n{}\n[[strategy]]\n{}\n{}\n",
        c.target, c.workload, c.strategy, c.extra
    )
}

#[test]
fn every_bad_input_is_refused_with_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in FILES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let file = dir.path().join("bad.toml");
    let mut failures = Vec::new();
    for c in CASES {
        let src = scenario(c);
        std::fs::write(&file, &src).unwrap();
        let out = common::llmbench(&["validate", file.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let missing: Vec<_> = c.says.iter().filter(|w| !stderr.contains(**w)).collect();
        if out.status.code() != Some(2) || !missing.is_empty() || stderr.contains("panicked") {
            failures.push(format!(
                "--- {src}=> exit {:?}, missing {missing:?}:\n{stderr}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_file_that_is_not_utf8_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.toml");
    std::fs::write(&file, b"name = \"caf\xe9\"\n[target]\nkind = \"mock\"\n").unwrap();
    let out = common::llmbench(&["validate", file.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("latin1.toml:1:12: byte 0xe9 is not UTF-8"),
        "{stderr}"
    );
}

#[test]
fn an_empty_key_variable_is_not_a_key() {
    let src = "name = \"k\"\n[target]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n\
         api_key_env = \"LLMBENCH_EMPTY_KEY\"\n[workload]\nrequests = 1\n[[strategy]]\nkind = \"serial\"\n";
    let (out, dir) = common::run_binary(src, &[("LLMBENCH_EMPTY_KEY", " ")]);
    let out_dir = dir.path().join("out");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("LLMBENCH_EMPTY_KEY (named by target.api_key_env) is set but empty"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing was sent or written");
}
