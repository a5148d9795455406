//! External strategies: a program given the work items on stdin reports its own
//! records. Known records give exactly their figures in summary.json; a crashing, a
//! hanging, a lying and a never-ready program each end with a clear, classified
//! outcome, what they wrote kept; SIGTERM kills a program and its helpers; a program
//! that is not there is skipped with the reason. The programs
//! are small Python scripts (standard library only) in tests/external/; none sends a
//! request. A few seconds in all (the hanging one is killed after its 1 s timeout_s).

mod common;

use llmbench::recorder::new_histogram;
use llmbench::summary::Percentiles;
use serde_json::Value;

const SECRET: &str = "sk-external-test-0123456789";

/// Whether process `pid` has ended (within 5 s).
fn gone(pid: i32) -> bool {
    (0..50).any(|_| {
        // SAFETY: signal 0 only asks whether the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0 && !zombie(pid);
        if exists {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        !exists
    })
}

/// A process that has ended and waits to be reaped by whoever adopted it.
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The percentiles summary.json gives for these latencies, in milliseconds.
fn percentiles(ms: &[u64]) -> Value {
    let mut h = new_histogram();
    for v in ms {
        h.record(v * 1000).unwrap();
    }
    serde_json::to_value(Percentiles::from_histogram(&h).unwrap()).unwrap()
}

#[test]
fn known_records_give_exactly_their_figures_and_the_key_is_redacted() {
    let scenario = r#"
name = "known"
[target]
kind = "openai"
base_url = "http://127.0.0.1:9"
model = "m-test"
api_key_env = "LLMBENCH_TEST_EXTERNAL_KEY"
[workload]
requests = 3
max_tokens = 3
[[strategy]]
kind = "external"
command = ["python3", "tests/external/known.py"]
limit = 4
"#;
    let (out, dir) = common::run_binary(scenario, &[("LLMBENCH_TEST_EXTERNAL_KEY", SECRET)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (run, summary) = common::summary_of(&dir);
    let s = &summary["strategies"][0];
    assert_eq!(s["label"], "known-4");
    assert_eq!(s["kind"], "external");
    let requests = &s["requests"];
    assert_eq!(
        (&requests["ok"], &requests["rate_limited"]),
        (&Value::from(2), &Value::from(1))
    );
    let latency = &s["latency_ms"];
    assert_eq!(latency["e2e"], percentiles(&[200, 200]));
    assert_eq!(latency["ttft"], percentiles(&[50, 50]));
    assert_eq!(latency["itl"], percentiles(&[20, 30, 20, 30]));
    assert_eq!(latency["tpot"], percentiles(&[75, 75]));
    assert_eq!(s["output_tokens"], 6);
    let health = &s["client_health"];
    assert_eq!(health["lag_ms"], percentiles(&[1, 2, 7]));
    assert_eq!(
        health["client_bound"], true,
        "a lag p99 of 7 ms is over the 5 ms limit"
    );
    // From its rusage: start-up (the interpreter) apart from the strategy's share.
    let cpu = s["client_cpu_s"].as_f64().unwrap() + s["program"]["startup_cpu_s"].as_f64().unwrap();
    assert!(cpu > 0.0, "{s}");
    // Its CPU time is its own: llmbench's lag probe does not run in it.
    assert_eq!(s["probe_cpu_s"], Value::Null, "{s}");
    let program = &s["program"];
    assert_eq!(program["outcome"], "completed");
    assert_eq!(program["exit"], "exit status 0");
    assert_eq!(
        (&program["records"], &program["lag_samples"]),
        (&Value::from(3), &Value::from(3))
    );
    // Its settings reached it; its stderr is saved, the key cut out of it.
    let saved = std::fs::read_to_string(run.join("known-4.stderr.txt")).unwrap();
    for setting in [
        "LLMBENCH_API=chat",
        "LLMBENCH_BASE_URL=http://127.0.0.1:9",
        "LLMBENCH_MODEL=m-test",
        "LLMBENCH_LIMIT=4",
        "LLMBENCH_API_KEY_ENV=LLMBENCH_TEST_EXTERNAL_KEY",
        "the key is [redacted]",
    ] {
        assert!(saved.contains(setting), "{setting} not in {saved}");
    }
    common::assert_written_nowhere(&run, SECRET);
    assert!(!stderr.contains(SECRET));
}

#[test]
fn crashing_hanging_lying_and_unready_programs_are_classified_and_what_they_wrote_is_kept() {
    let scenario = r#"
name = "trouble"
[target]
kind = "mock"
[workload]
requests = 4
[[strategy]]
kind = "external"
command = ["python3", "tests/external/crash.py"]
[[strategy]]
kind = "external"
command = ["python3", "tests/external/hang.py"]
timeout_s = 1
[[strategy]]
kind = "external"
command = ["python3", "tests/external/lie.py"]
[[strategy]]
kind = "external"
label = "never-ready"
command = ["python3", "-c", "import sys; sys.exit(4)"]
"#;
    let (out, dir) = common::run_binary(scenario, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (run, summary) = common::summary_of(&dir);
    let by_label = |label: &str| {
        summary["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("{label} missing"))
            .clone()
    };
    let errors = |s: &Value, class: &str| s["requests"]["errors"][class].as_u64().unwrap_or(0);

    let crash = by_label("crash");
    assert_eq!(crash["program"]["outcome"], "crashed");
    assert_eq!(crash["program"]["exit"], "exit status 1");
    assert_eq!(crash["requests"]["ok"], 1, "its one record is kept");
    let lost = crash["program"]["omitted"].as_u64().unwrap()
        + crash["program"]["never_given"].as_u64().unwrap();
    assert_eq!(lost, 3);
    assert_eq!(
        errors(&crash, "protocol") + crash["requests"]["dropped"].as_u64().unwrap(),
        3
    );
    assert!(
        crash["program"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("RuntimeError: the client fell over"),
        "{crash}"
    );
    assert!(
        stderr.contains("warning: crash: the program crashed (exit status 1)"),
        "{stderr}"
    );

    let hang = by_label("hang");
    assert_eq!(hang["program"]["outcome"], "timed_out");
    assert_eq!(
        errors(&hang, "timeout"),
        4,
        "every item it held fails as timeout"
    );
    // Its helper process was killed with it: no orphans.
    let saved = std::fs::read_to_string(run.join("hang.stderr.txt")).unwrap();
    let pid: i32 = saved
        .split("helper pid ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone(pid), "the hanging program's helper {pid} survived");

    let never = by_label("never-ready");
    assert_eq!(never["program"]["outcome"], "failed_to_start");
    let exit = never["program"]["exit"].as_str().unwrap();
    assert!(
        exit.contains("before writing {\"type\": \"ready\"}") && exit.ends_with("exit status 4"),
        "{exit}"
    );
    assert_eq!(
        never["requests"]["dropped"], 4,
        "its items are dropped at once"
    );

    let lie = by_label("lie");
    let program = &lie["program"];
    assert_eq!(program["outcome"], "malformed");
    assert_eq!(program["exit"], "exit status 0");
    assert_eq!(
        (&program["invalid_records"], &program["malformed_lines"]),
        (&Value::from(4), &Value::from(1))
    );
    assert_eq!(
        lie["requests"]["ok"], 2,
        "items 0 and 3 are answered truthfully"
    );
    assert_eq!(errors(&lie, "protocol"), 2, "items 1 and 2 lied about");
    assert!(
        program["problem"]
            .as_str()
            .unwrap()
            .contains("stdout line 2: index 99 is not an item"),
        "{program}"
    );
    let rows = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    assert!(
        rows.contains("end_ns") || rows.contains("is in the future"),
        "the reason is kept with the item"
    );
}

/// A scenario whose external strategy's program is not there, after a `serial` one.
const ABSENT: &str = r#"
name = "absent"
[target]
kind = "mock"
[workload]
requests = 2
[[strategy]]
kind = "serial"
[[strategy]]
kind = "external"
command = ["target/no-such-venv/bin/python", "clients/python/gather.py"]
"#;

#[test]
fn a_program_that_is_not_there_is_skipped_with_the_reason() {
    let (out, dir) = common::run_binary(ABSENT, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, summary) = common::summary_of(&dir);
    let skipped = &summary["skipped"][0];
    assert_eq!(skipped["label"], "gather");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"target/no-such-venv/bin/python\" was not found"),
        "{reason}"
    );
    assert!(reason.contains("scripts/python-venv.sh"), "{reason}");
}

#[test]
fn a_run_whose_every_strategy_is_skipped_fails_saying_nothing_was_measured() {
    let only_absent = ABSENT.replace("[[strategy]]\nkind = \"serial\"\n", "");
    let (out, dir) = common::run_binary(&only_absent, &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "error: nothing was measured: every strategy was skipped (gather), for the reasons above"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("skipped: gather (program"), "{stdout}");
    assert!(!stdout.contains("requests ok"), "no empty table: {stdout}");
    // The results are still saved, with the reason.
    let (_, summary) = common::summary_of(&dir);
    assert_eq!(summary["skipped"][0]["label"], "gather");
    // Saved, but not as a complete result: it measured nothing.
    assert_eq!(summary["complete"], false, "{summary}");
}

#[test]
fn sigterm_kills_the_program_and_its_helpers_and_keeps_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    let scenario = r#"
name = "stopped"
[target]
kind = "mock"
[workload]
requests = 3
[[strategy]]
kind = "external"
command = ["python3", "tests/external/hang.py"]
timeout_s = 600
"#;
    std::fs::write(&file, scenario).unwrap();
    let out = dir.path().join("out");
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "run",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (at most 60 s) until the program has started its helper and said so.
    let mut helper = None;
    for _ in 0..600 {
        let saved = std::fs::read_dir(&out)
            .ok()
            .and_then(|mut runs| runs.next())
            .and_then(|run| std::fs::read_to_string(run.ok()?.path().join("hang.stderr.txt")).ok());
        helper = saved.and_then(|s| s.split("helper pid ").nth(1)?.trim().parse::<i32>().ok());
        if helper.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let helper = helper.expect("the program never said where its helper is");
    // SAFETY: signals to processes this test started.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let (_, summary) = common::summary_of(&dir);
    let program = &summary["strategies"][0]["program"];
    assert_eq!(program["outcome"], "interrupted", "{program}");
    assert_eq!(summary["strategies"][0]["requests"]["cancelled"], 3);
    assert!(
        gone(helper),
        "the program's helper {helper} survived the SIGTERM"
    );
}
