//! The `llmbench` binary as a user meets it: exit codes, messages, the results folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn llmbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn scenario_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .display()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD: &str = "name = \"t\"\n[target]\nkind = \"mock\"\n[workload]\nrequests = 2\n[[strategy]]\nkind = \"serial\"\n";

#[test]
fn bad_scenarios_exit_2_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("syntax.toml", GOOD.replace("[target]", "[target"), ":2:8: "),
        (
            "unknown.toml",
            GOOD.replace("requests = 2", "requests = 2\nburst = 1"),
            ":6:1: workload.burst: unknown field `burst`",
        ),
        (
            "type.toml",
            GOOD.replace("requests = 2", "requests = 2.5"),
            ":5:12: workload.requests: invalid type: floating point `2.5`",
        ),
        (
            "zero.toml",
            GOOD.replace("requests = 2", "requests = 0"),
            ":5:12: workload.requests: must be a number of requests from 1 to 10,000,000, got 0",
        ),
        (
            "negative.toml",
            GOOD.replace("requests = 2", "requests = -3"),
            ":5:12: workload.requests: must be a number of requests from 1 to 10,000,000, got -3",
        ),
    ];
    for (name, src, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, src).unwrap();
        for command in ["validate", "run"] {
            let out = llmbench(&[command, path.to_str().unwrap()]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {name}: {err}");
            assert!(
                err.starts_with(&format!("error: {}", path.display())),
                "{name}: {err}"
            );
            assert!(err.contains(want), "{name}: want {want:?} in {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let out = llmbench(&["run", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read scenario file does/not/exist.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "prompt-caching.toml"),
        "{names:?}"
    );
    let paths: Vec<String> = names.iter().map(|n| scenario_path(n)).collect();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(paths.iter().map(String::as_str))
        .collect();
    let out = llmbench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        assert!(stdout.contains(&format!("{name}: ok")), "{name}: {stdout}");
    }
}

#[test]
fn help_and_version() {
    let out = llmbench(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("llmbench run scenarios/burst.toml"),
        "{help}"
    );
    let out = llmbench(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("llmbench {}", env!("CARGO_PKG_VERSION"))
    );
}

fn only_subdir(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn run_writes_a_complete_results_folder_and_never_overwrites() {
    let out_dir = tempfile::tempdir().unwrap();
    let smoke = scenario_path("smoke.toml");
    let out = llmbench(&["run", &smoke, "-o", out_dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for row in [
        "requests ok",
        "of which 429",
        "makespan (s)",
        "req/s",
        "output tok/s",
        "E2E p99 (ms)",
        "TTFT p50 (ms)",
        "ITL p99 (ms)",
    ] {
        assert!(stdout.contains(row), "table lacks {row}: {stdout}");
    }
    let runs = only_subdir(out_dir.path());
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let name = run.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("smoke-") && name.ends_with('Z'), "{name}");
    assert!(stdout.contains(&run.display().to_string()));

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["scenario"], "smoke");
    assert_eq!(summary["workload_seed"], 7);
    assert_eq!(summary["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(summary["machine"]["cores"].as_u64().unwrap() >= 1);
    let strategies = summary["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), 4);
    for s in strategies {
        // 12 RPM: a full bucket admits 12 of the 20, the rest are 429s.
        assert_eq!(s["requests"]["ok"], 12, "{s}");
        assert_eq!(s["requests"]["rate_limited"], 8, "{s}");
        assert!(s["latency_ms"]["e2e"]["p99"].as_f64().unwrap() > 0.0);
        for metric in ["e2e", "ttft", "itl", "tpot"] {
            let hgrm = run.join(format!("{}.{metric}.hgrm", s["label"].as_str().unwrap()));
            assert!(hgrm.exists(), "{}", hgrm.display());
        }
    }
    let csv = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 20);
    assert!(csv.starts_with(
        "strategy,index,prompt_tokens,max_tokens,intended_us,sent_us,attempt_sent_us,first_token_us,end_us,"
    ));
    assert_eq!(
        std::fs::read(run.join("scenario.toml")).unwrap(),
        std::fs::read(&smoke).unwrap()
    );
    // A finished run says so, and leaves neither its marker nor a temporary file.
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["missing_strategies"], serde_json::json!([]));
    let hidden: Vec<String> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");

    // A second run in the same second gets its own folder.
    let out = llmbench(&[
        "run",
        &smoke,
        "-o",
        out_dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(only_subdir(out_dir.path()).len(), 2);
}

/// Starts a slow two-strategy run, sends `signal` to it half a second into the first
/// strategy, and returns its exit code, summary, stderr and whether `.running` is left.
fn interrupted_with(signal: &str) -> (Option<i32>, serde_json::Value, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    // Serial needs 40 × 100 ms = 4 s; the interrupt comes long before.
    let src = "name = \"slow\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 100\n[workload]\nrequests = 40\nmax_tokens = 1\n[[strategy]]\nkind = \"serial\"\n[[strategy]]\nkind = \"join_all\"\n";
    let file = dir.path().join("slow.toml");
    std::fs::write(&file, src).unwrap();
    let out_dir = dir.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "run",
            file.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The results folder exists before the first request; wait for it (10 s at most).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "no results folder appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let run = &only_subdir(&out_dir)[0];
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let running = run.join(".running").exists();
    (out.status.code(), summary, stderr(&out), running)
}

#[test]
fn ctrl_c_sigterm_and_sighup_stop_the_run_and_keep_the_results() {
    for (signal, code, name) in [
        ("-INT", 130, "Ctrl-C"),
        ("-TERM", 143, "SIGTERM"),
        ("-HUP", 129, "SIGHUP"),
    ] {
        let (status, summary, stderr, running) = interrupted_with(signal);
        assert_eq!(status, Some(code), "{signal}: {stderr}");
        assert!(!running, "{signal}: an interrupted run ends: no .running");
        assert_eq!(summary["complete"], false, "{signal}");
        // serial was cut short (its partial results are kept), join_all never ran.
        assert_eq!(
            summary["missing_strategies"],
            serde_json::json!(["serial", "join_all"]),
            "{signal}"
        );
        assert!(
            stderr.contains(&format!("interrupting on {name}")),
            "{stderr}"
        );
        assert_eq!(summary["interrupted"], true, "{signal}");
        let serial = &summary["strategies"][0]["requests"];
        assert_eq!(serial["total"], 40);
        assert!(
            serial["cancelled"].as_u64().unwrap() > 0,
            "{signal}: {serial}"
        );
        assert_eq!(
            summary["strategies"].as_array().unwrap().len(),
            1,
            "{signal}"
        );
    }
}

#[test]
fn a_killed_run_keeps_its_finished_strategies_and_says_it_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    // join_all takes ~0.2 s; serial then needs 20 × 200 ms = 4 s: the kill comes first.
    let src = "name = \"killed\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 200\n\
               [workload]\nrequests = 20\nmax_tokens = 1\n[[strategy]]\nkind = \"join_all\"\n\
               [[strategy]]\nkind = \"serial\"\n[[strategy]]\nkind = \"joinset\"\nlimit = 2\n";
    let file = dir.path().join("killed.toml");
    std::fs::write(&file, src).unwrap();
    let out_dir = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "run",
            file.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first strategy's summary (20 s at most), then kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let run = out_dir
            .exists()
            .then(|| only_subdir(&out_dir).pop())
            .flatten();
        if let Some(run) = run
            && run.join("summary.json").exists()
        {
            break run;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no summary appeared");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Serial's first requests finish (200 ms each) before the kill: their rows must be
    // on disk although their strategy never was saved.
    std::thread::sleep(Duration::from_millis(700));
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], false);
    assert_eq!(summary["interrupted"], false, "nobody got to say so");
    assert_eq!(
        summary["missing_strategies"],
        serde_json::json!(["serial", "joinset-2"])
    );
    let labels: Vec<&str> = summary["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["join_all"]);
    assert!(run.join(".running").exists(), "a kill leaves the marker");
    let csv = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    let rows_of = |label: &str| csv.lines().filter(|l| l.starts_with(label)).count();
    assert_eq!(
        rows_of("join_all,"),
        20,
        "the finished strategy's rows: {csv}"
    );
    // At least one and fewer than all 20 of serial's: written as each request finished.
    assert!((1..20).contains(&rows_of("serial,")), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 20 + rows_of("serial,"), "{csv}");

    let out = llmbench(&["report", run.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("is an incomplete run: the run was killed or crashed before it ended")
            && err.contains("missing strategies: serial, joinset-2"),
        "{err}"
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("**Incomplete run**") && md.contains("missing strategies: serial, joinset-2"),
        "{md}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("<strong>Incomplete run</strong>"), "{html}");

    let out = llmbench(&["compare", run.to_str().unwrap(), run.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: baseline ") && err.contains("warning: candidate "),
        "{err}"
    );
}

#[test]
fn a_bad_trace_is_invalid_input_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "TIMESTAMP,ContextTokens,GeneratedTokens\n1,10,5\n2,10,-5\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.toml");
    let src = GOOD.replace(
        "requests = 2",
        "arrival = { kind = \"trace\", path = \"t.csv\" }",
    );
    std::fs::write(&scenario, src).unwrap();
    let out = llmbench(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "t.csv:3: token count \"-5\" is not a whole number from 0 to 10000000 (the trace of workload.arrival)"
        ),
        "{err}"
    );
}

#[test]
fn the_standalone_mock_serves_until_ctrl_c() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("m.toml");
    std::fs::write(
        &scenario,
        "[mock]\nttft_ms = 1\nitl_ms = 0\nrate_limit = { rpm = 1 }\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(["mock", scenario.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("llmbench mock listening on http://")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // Two plain HTTP/1.1 requests on loopback: the second exceeds the 1 RPM bucket.
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            socket,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).unwrap();
        statuses.push(response.split_whitespace().nth(1).unwrap().to_string());
    }
    assert_eq!(statuses, ["200", "429"]);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains(
            "served 2 requests (1 rate limited) on 2 connections (0 refused); 2 tokens streamed"
        ),
        "{rest}"
    );
    assert!(
        rest.contains("token lateness against the schedule: p50 "),
        "{rest}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[mock]\nttft_ms = -4\n").unwrap();
    let out = llmbench(&["mock", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.toml:2:11: mock.ttft_ms:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_dead_endpoint_fails_the_run_and_still_saves_its_results() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.path().join("dead.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"dead\"\n[target]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}\"\n\
             model = \"m\"\n[workload]\nrequests = 3\n[[strategy]]\nkind = \"serial\"\n"
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = llmbench(&[
        "run",
        file.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "-q",
        "--no-report",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: no request succeeded (connect 3); the first error: "),
        "{err}"
    );
    let saved = only_subdir(&out_dir);
    assert!(saved[0].join("requests.csv").exists() && saved[0].join("summary.json").exists());
}

#[test]
fn strategy_selects_labels_to_run_and_an_unknown_label_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let smoke = scenario_path("smoke.toml");
    let args = |labels: &[&str]| {
        let mut args = vec![
            "run",
            &smoke,
            "-o",
            out_dir.to_str().unwrap(),
            "-q",
            "--no-report",
        ];
        for label in labels {
            args.extend(["--strategy", label]);
        }
        llmbench(&args)
    };
    let out = args(&["joinset-4", "serial"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = std::fs::read_to_string(only_subdir(&out_dir)[0].join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let labels: Vec<&str> = summary["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["serial", "joinset-4"], "in the scenario's order");

    let out = args(&["semaphore-9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "--strategy: no strategy is labelled \"semaphore-9\"; the scenario's strategies are: serial, join_all, semaphore-4, joinset-4"
        ),
        "{}",
        stderr(&out)
    );
}

/// A line of the standalone mock's `/proc/PID/status` once it listens (started with
/// `warm_mib`), as a number: `VmRSS` in kB, `FDSize` in slots.
#[cfg(target_os = "linux")]
fn mock_status(warm_mib: &str, field: &str) -> u64 {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(["mock", "--port", "0", "--warm-mib", warm_mib])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("llmbench mock listening"), "{first}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
fn mock_resident_mib(warm_mib: &str) -> u64 {
    mock_status(warm_mib, "VmRSS") >> 10
}

/// Grown once before it listens, so that accepting connections never waits for the
/// kernel to grow it: room for 65,536, or as many as its open-file limit (raised to the
/// hard limit, which it shares with this test) allows.
#[test]
#[cfg(target_os = "linux")]
fn the_standalone_mock_grows_its_descriptor_table_before_it_listens() {
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().1;
    let table = mock_status("0", "FDSize");
    assert!(
        table >= hard.min(1 << 16),
        "{table} slots (hard limit {hard})"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn the_standalone_mock_warms_its_heap_before_it_listens() {
    // Written and freed for reuse, and resident once it says it listens. (That it stays
    // resident under load, mimalloc's purge being off, takes seconds of allocation to
    // show; the option's index is checked in main.rs.)
    let warmed = mock_resident_mib("96");
    assert!(warmed >= 96, "{warmed} MiB resident after warming 96");
    let cold = mock_resident_mib("0");
    assert!(cold < 96, "{cold} MiB resident without warming");
}

#[test]
fn a_warm_size_out_of_range_is_refused() {
    let out = llmbench(&["mock", "--port", "0", "--warm-mib", "5000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--warm-mib") && err.contains("0..=4096"),
        "{err}"
    );
}
