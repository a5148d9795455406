//! Charts and reports: produced by every run, redrawn identically from disk, compared
//! across runs, and gated by SLOs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn llmbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

const TINY: &str = r#"
name = "tiny"
[target]
kind = "mock"
[mock]
ttft_ms = { dist = "uniform", min = 5, max = 15 }
itl_ms = 1
[workload]
requests = 6
max_tokens = 4
[[strategy]]
kind = "serial"
[[strategy]]
kind = "semaphore"
limit = 3
"#;

/// Runs `src` with the binary and returns the exit code and the run's folder.
fn run(dir: &Path, src: &str) -> (Option<i32>, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(&file, src).unwrap();
    let out_dir = dir.join("out");
    let out = llmbench(&[
        "run",
        file.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "-q",
    ]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    (out.status.code(), runs.pop().unwrap())
}

const CHARTS: [&str; 5] = [
    "latency-spectrum-e2e",
    "latency-spectrum-ttft",
    "latency-cdf",
    "timeline",
    "throughput-vs-p99",
];

#[test]
fn a_limit_sweep_gets_its_knee_chart_and_other_runs_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = TINY.replace("limit = 3", "limit = [1, 2, 3]");
    let (code, run_dir) = run(&dir.path().join("sweep"), &sweep);
    assert_eq!(code, Some(0));
    let svg =
        std::fs::read_to_string(run_dir.join("charts").join("concurrency-sweep.svg")).unwrap();
    assert!(svg.contains("Throughput by concurrency limit") && svg.contains("semaphore"));
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.contains("charts/concurrency-sweep.png"), "{md}");

    let (_, plain_dir) = run(&dir.path().join("plain"), TINY);
    assert!(
        !plain_dir
            .join("charts")
            .join("concurrency-sweep.svg")
            .exists()
    );
}

#[test]
fn a_run_writes_charts_and_reports_and_report_redraws_them_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (code, run_dir) = run(dir.path(), TINY);
    assert_eq!(code, Some(0));
    for chart in CHARTS {
        let png = std::fs::read(run_dir.join("charts").join(format!("{chart}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{chart}.png is a PNG");
        let svg =
            std::fs::read_to_string(run_dir.join("charts").join(format!("{chart}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("serial") || chart == "timeline",
            "{chart}.svg"
        );
    }
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.starts_with("# llmbench report: tiny"));
    assert!(
        md.contains("## Verdict") && md.contains("**Recommendation.** Use **"),
        "{md}"
    );
    assert!(
        md.contains("Finished first with every request answered: **semaphore-3**"),
        "{md}"
    );
    assert!(md.contains("![End-to-end latency by percentile](charts/latency-spectrum-e2e.png)"));
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    assert_eq!(
        html.matches("<svg").count(),
        CHARTS.len(),
        "every chart inline"
    );
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("<img"));
    let external = html.matches("http://").count() + html.matches("https://").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(external, namespaces, "no URL but the SVG namespace");

    // Redraw from disk: the same bytes.
    let originals: Vec<(PathBuf, Vec<u8>)> = [
        "report.md",
        "report.html",
        "charts/timeline.svg",
        "charts/latency-cdf.png",
    ]
    .iter()
    .map(|f| (run_dir.join(f), std::fs::read(run_dir.join(f)).unwrap()))
    .collect();
    std::fs::remove_dir_all(run_dir.join("charts")).unwrap();
    std::fs::remove_file(run_dir.join("report.md")).unwrap();
    std::fs::remove_file(run_dir.join("report.html")).unwrap();
    let out = llmbench(&["report", run_dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, bytes) in originals {
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{} differs after redraw",
            path.display()
        );
    }
}

#[test]
fn a_missed_slo_exits_99_and_shows_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{TINY}\n[slo]\ne2e_p99_ms = 1\nmax_error_rate = 0.0\n");
    let (code, run_dir) = run(dir.path(), &src);
    assert_eq!(code, Some(99));
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.contains("## Service-level objectives"), "{md}");
    assert!(md.contains("| E2E p99 ≤ 1 ms") && md.contains("✗"), "{md}");
    assert!(
        md.contains("| error rate ≤ 0.0 %") && md.contains("✓ 0"),
        "{md}"
    );
    assert!(md.contains("No strategy met every SLO"), "{md}");
    let out = llmbench(&["report", run_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(99), "report re-evaluates the SLOs");

    let met = format!("{TINY}\n[slo]\ne2e_p99_ms = 60000\nmin_throughput_rps = 0.1\n");
    let (code, _) = run(&dir.path().join("met"), &met);
    assert_eq!(code, Some(0));
}

#[test]
fn compare_flags_a_regression_and_passes_an_identical_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_, baseline) = run(dir.path(), TINY);
    let out = llmbench(&[
        "compare",
        baseline.to_str().unwrap(),
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A synthetic regression: the candidate is the baseline with serial's throughput
    // halved and its p99 doubled, and one more failure for semaphore-3.
    let candidate = dir.path().join("candidate");
    std::fs::create_dir(&candidate).unwrap();
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(baseline.join("summary.json")).unwrap()).unwrap();
    let serial = &mut summary["strategies"][0];
    serial["requests_per_s"] = (serial["requests_per_s"].as_f64().unwrap() / 2.0).into();
    serial["latency_ms"]["e2e"]["p99"] =
        (serial["latency_ms"]["e2e"]["p99"].as_f64().unwrap() * 2.0).into();
    summary["strategies"][1]["requests"]["failed"] = 1.into();
    std::fs::write(candidate.join("summary.json"), summary.to_string()).unwrap();

    let out = llmbench(&[
        "compare",
        baseline.to_str().unwrap(),
        candidate.to_str().unwrap(),
        "--threshold",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(99));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("regression: serial: req/s") && err.contains("(-50.0 %)"),
        "{err}"
    );
    assert!(
        err.contains("regression: serial: E2E p99 (ms)") && err.contains("(+100.0 %)"),
        "{err}"
    );
    assert!(
        err.contains("regression: semaphore-3: failed requests 0 → 1"),
        "{err}"
    );
    assert!(!err.contains("regression: semaphore-3: req/s"), "{err}");
    let written = std::fs::read_to_string(candidate.join(format!(
        "compare-{}.md",
        baseline.file_name().unwrap().to_string_lossy()
    )))
    .unwrap();
    assert!(
        written.contains("## Regressions") && written.contains("⚠"),
        "{written}"
    );

    let out = llmbench(&[
        "compare",
        baseline.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "not a results folder");
    assert!(String::from_utf8_lossy(&out.stderr).contains("an llmbench results folder?"));
}
