//! Starting the program, before the strategy's clock starts: it is started, its stderr
//! copied aside, and llmbench waits (at most `timeout_s`) for its `{"type": "ready"}`
//! line, so that an interpreter's start and the imports of a large SDK are not
//! counted against the first work items.

use super::process::{self, BoundedLine, Program, read_bounded};
use super::{DRAIN, MAX_RECORD_BYTES};
use crate::client::Redactor;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::BufReader;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest stderr line kept, and most stderr saved in all.
const MAX_STDERR_LINE: usize = 8 << 10;
const MAX_STDERR_BYTES: u64 = 16 << 20;

/// A program that said it is ready, with its pipes.
pub(super) struct Launched {
    pub program: Program,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
    /// Copies its stderr to the results folder; ends with its last line.
    pub stderr_copy: JoinHandle<Option<String>>,
    /// The rusage of reaped children before it started.
    pub cpu_before: Option<Duration>,
    /// The CPU time it used to get ready, and how long that took.
    pub startup_cpu: Option<Duration>,
    pub startup: Duration,
    /// When it said it was ready.
    pub ready: Instant,
}

/// How the start went.
pub(super) enum Launch {
    Ready(Box<Launched>),
    /// It could not be started, or ended or hung before it was ready: why, and its
    /// last line on stderr.
    Failed(String, Option<String>),
}

/// Where its stderr goes, and the secrets cut from it.
pub(super) struct StderrCopy {
    pub file: PathBuf,
    pub secrets: Redactor,
}

/// Starts `command` and waits at most `wait` for it to be ready.
pub(super) async fn launch(
    command: &[String],
    env: &[(String, String)],
    stderr: StderrCopy,
    wait: Duration,
    cancel: &CancellationToken,
) -> Launch {
    let cpu_before = process::children_cpu();
    let started = Instant::now();
    let mut program = match Program::start(command, env) {
        Ok(program) => program,
        Err(e) => return Launch::Failed(format!("not started: {e}"), None),
    };
    let stdin = program.child.stdin.take();
    let stdout = program.child.stdout.take();
    let stderr_copy = tokio::spawn(copy_stderr(program.child.stderr.take(), stderr));
    let Some(stdout) = stdout else {
        return Launch::Failed("its stdout could not be read".into(), None);
    };
    let mut stdout = BufReader::new(stdout);
    let ready = tokio::select! {
        ready = wait_ready(&mut stdout) => ready,
        _ = tokio::time::sleep(wait) => Err(format!(
            "not ready within timeout_s ({} s)",
            wait.as_secs_f64()
        )),
        _ = cancel.cancelled() => Err("interrupted before it was ready".into()),
    };
    match ready {
        Ok(()) => Launch::Ready(Box::new(Launched {
            startup_cpu: program.cpu_so_far(),
            startup: started.elapsed(),
            ready: Instant::now(),
            program,
            stdin,
            stdout,
            stderr_copy,
            cpu_before,
        })),
        Err(why) => {
            let exit = match tokio::time::timeout(DRAIN, program.reap()).await {
                Ok(Ok(status)) => process::describe_exit(&status),
                _ => "killed".into(),
            };
            let tail = tokio::time::timeout(DRAIN, stderr_copy)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            Launch::Failed(format!("{why}; {exit}"), tail)
        }
    }
}

/// Reads stdout up to the ready line (lines before it are not records, and are
/// skipped).
async fn wait_ready(stdout: &mut BufReader<ChildStdout>) -> Result<(), String> {
    let mut line = Vec::new();
    loop {
        match read_bounded(stdout, &mut line, MAX_RECORD_BYTES).await {
            Ok(Some(BoundedLine::Whole)) if super::protocol::is_ready(&line) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err("it ended its output before writing {\"type\": \"ready\"}".into());
            }
        }
    }
}

/// Copies the program's stderr into its file, redacted, line by line (each at most
/// [`MAX_STDERR_LINE`] bytes, [`MAX_STDERR_BYTES`] in all); returns its last line.
async fn copy_stderr(stderr: Option<ChildStderr>, to: StderrCopy) -> Option<String> {
    let stderr = stderr?;
    let mut out = std::fs::File::create(&to.file).ok();
    let mut reader = BufReader::new(stderr);
    let (mut line, mut written, mut tail) = (Vec::new(), 0u64, None);
    while let Ok(Some(read)) = read_bounded(&mut reader, &mut line, MAX_STDERR_LINE).await {
        let mut text = to.secrets.redact(&String::from_utf8_lossy(&line));
        if let BoundedLine::TooLong(n) = read {
            text.push_str(&format!(" … [line of {n} bytes cut]"));
        }
        if !text.trim().is_empty() {
            tail = Some(text.clone());
        }
        if written > MAX_STDERR_BYTES {
            continue;
        }
        written += text.len() as u64 + 1;
        if written > MAX_STDERR_BYTES {
            text = format!("[stderr cut here: more than {MAX_STDERR_BYTES} bytes]");
        }
        if let Some(file) = out.as_mut()
            && writeln!(file, "{text}").is_err()
        {
            out = None;
        }
    }
    tail.map(|t| crate::client::keep_message(&to.secrets, &t))
}
