//! The process's descriptor table, grown before a measurement to hold every socket the
//! run will open, so that opening one while requests are timed never grows it.
//!
//! Why: Linux grows a descriptor table by doubling it (64, 128, 256, …), and when
//! several threads share the table (every tokio runtime's process) it waits for an RCU
//! grace period before freeing the old one, with the thread that opened the descriptor
//! asleep until then. On a 2-core VM one wait took 5 to 16 ms (`synchronize_rcu` under
//! `socket()` and `accept()`), once per doubling: a client opening 1,000 HTTP/1.1
//! connections stalled every task on its thread four or five times in its ramp-up, and
//! its TTFT p99 was 4 to 10 ms above the mock's. The kernel never shrinks a table, so
//! growing it once, before the clock starts, pays the one wait there. A leaf: it knows
//! nothing of what the descriptors are for.

use std::time::{Duration, Instant};

/// The most descriptors reserved, whatever is asked: a table of 2 MiB of kernel memory
/// (8 bytes a slot). An open-loop plan counts every work item as possibly in flight, so
/// a long soak would otherwise ask for millions; a run that does hold more sockets
/// grows the table past this as it goes.
const MOST: u64 = 1 << 18;

/// Grows the descriptor table to hold `count` descriptors (at most [`MOST`], and what
/// the open-file soft limit allows), by duplicating a descriptor onto the last slot
/// wanted and closing the copy; returns how long that took (one grace period when the
/// table grew). A table that already holds `count` is left as it is; nothing is done
/// where the platform offers no way (and on error: the run then grows it as it goes,
/// as before).
pub fn reserve(count: u64) -> Duration {
    let started = Instant::now();
    #[cfg(unix)]
    grow_to(count.min(MOST));
    started.elapsed()
}

#[cfg(unix)]
fn grow_to(count: u64) {
    use std::os::fd::AsRawFd;
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft);
    let Ok(last) = libc::c_int::try_from(count.min(limit).saturating_sub(1)) else {
        return;
    };
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    // SAFETY: `F_DUPFD_CLOEXEC` returns a new descriptor (the lowest free one at or
    // above `last`) that nothing else owns, closed at once; it touches no memory.
    unsafe {
        let copy = libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, last);
        if copy >= 0 {
            libc::close(copy);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The size of this process's descriptor table, as the kernel reports it: the
    /// `FDSize` line of `/proc/self/status`.
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn the_table_holds_what_was_reserved_within_the_limit() {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0;
        let wanted = 3000.min(limit);
        reserve(wanted);
        assert!(table_size() >= wanted, "{} < {wanted}", table_size());
        // Past the limit (where the limit is small enough to grow a table to): grown
        // to the limit, without an error.
        if limit <= 1 << 16 {
            reserve(limit * 4);
            assert!(table_size() >= limit);
        }
        // Nothing stays open: a new descriptor still takes the lowest free number.
        let file = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        assert!((file.as_raw_fd() as u64) < wanted - 1);
    }
}
