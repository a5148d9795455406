//! The external program as a process: started in a process group of its own (so it
//! and anything it starts are killed together, and die with llmbench), watched for its
//! exit without being reaped (so its group can be killed safely until then), its CPU
//! time read from the kernel's rusage of reaped children, and its output read in lines
//! of bounded length.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// A started program and the watch on its exit.
pub struct Program {
    pub child: Child,
    pid: i32,
    exited: Option<oneshot::Receiver<()>>,
}

impl Program {
    /// Starts `args` with `env` added to llmbench's own environment, its stdin, stdout
    /// and stderr piped.
    pub fn start(args: &[String], env: &[(String, String)]) -> io::Result<Program> {
        let mut command = Command::new(&args[0]);
        command
            .args(&args[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
        unsafe {
            command.pre_exec(|| {
                // Killed if llmbench dies without killing it (a second Ctrl-C, a crash).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| io::Error::other("the program has no process id"))?;
        let (tx, rx) = oneshot::channel();
        // A plain thread: it blocks in waitid until the program exits (it always does:
        // every way out of a run kills it first).
        std::thread::Builder::new()
            .name("llmbench-program-wait".into())
            .spawn(move || {
                wait_exit(pid);
                let _ = tx.send(());
            })?;
        Ok(Program {
            child,
            pid,
            exited: Some(rx),
        })
    }

    /// Completes when the program has exited (it is not reaped yet, so its process
    /// group can still be killed safely).
    pub async fn exited(&mut self) {
        if let Some(rx) = self.exited.as_mut() {
            let _ = rx.await;
            self.exited = None;
        }
    }

    /// CPU time (user and system) the program itself has used so far, from
    /// `/proc/<pid>/stat` (in clock ticks, 10 ms); `None` outside Linux.
    pub fn cpu_so_far(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces:
        // utime and stime are the 14th and 15th of the line, the 12th and 13th here.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
            .ok()?
            .max(1);
        Some(Duration::from_nanos(
            ticks.saturating_mul(1_000_000_000) / per_second,
        ))
    }

    /// Kills the program and everything in its process group. Harmless once it has
    /// exited, as long as it is not yet reaped (the group's id is still held).
    pub fn kill_group(&self) {
        // SAFETY: kill has no memory effects; `pid` is our unreaped child's group.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
    }

    /// Kills what is left of the group (helpers the program started), then reaps it.
    pub async fn reap(mut self) -> io::Result<ExitStatus> {
        self.kill_group();
        self.exited().await;
        self.child.wait().await
    }
}

/// Blocks until process `pid` has exited, leaving it unreaped.
fn wait_exit(pid: i32) {
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT;
        // SAFETY: `info` is valid for writes; P_PID with our own child's id.
        let done = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if done == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// CPU time (user and system) of this process's reaped children so far: the
/// difference across a program's life is its own, its helpers' it waited for included.
pub fn children_cpu() -> Option<Duration> {
    // SAFETY: an all-zero rusage is valid; getrusage writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// How a program ended, in words: `exit status 1`, `killed by signal 9 (SIGKILL)`.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal} ({})", signal_name(signal)),
        (None, None) => "ended".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

/// One line read within a length limit.
pub enum BoundedLine {
    /// The line, without its newline.
    Whole,
    /// Longer than the limit: its first `limit` bytes are in the buffer, the rest was
    /// read and dropped; the count is the line's whole length.
    TooLong(usize),
}

/// Reads one line into `line` (cleared first), keeping at most `limit` bytes of it, so
/// a program that never ends a line cannot grow llmbench's memory. `None` at the end.
pub async fn read_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<BoundedLine>> {
    line.clear();
    let mut total = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match total {
                0 => None,
                _ if total > limit => Some(BoundedLine::TooLong(total)),
                _ => Some(BoundedLine::Whole),
            });
        }
        let (part, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], true),
            None => (buf, false),
        };
        let room = limit.saturating_sub(line.len()).min(part.len());
        line.extend_from_slice(&part[..room]);
        total = total.saturating_add(part.len());
        let used = part.len() + usize::from(ended);
        reader.consume(used);
        if ended {
            return Ok(Some(match total > limit {
                true => BoundedLine::TooLong(total),
                false => BoundedLine::Whole,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_cut_at_their_limit_and_the_rest_dropped() {
        let text = b"short\nthis line is long\n\nlast".to_vec();
        let mut reader = tokio::io::BufReader::with_capacity(4, &text[..]);
        let mut line = Vec::new();
        let mut read = Vec::new();
        while let Some(got) = read_bounded(&mut reader, &mut line, 8).await.unwrap() {
            let len = match got {
                BoundedLine::Whole => None,
                BoundedLine::TooLong(n) => Some(n),
            };
            read.push((String::from_utf8(line.clone()).unwrap(), len));
        }
        assert_eq!(
            read,
            [
                ("short".into(), None),
                ("this lin".into(), Some(17)),
                (String::new(), None),
                ("last".into(), None),
            ]
        );
    }
}
