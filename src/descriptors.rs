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
//! growing it once, before the clock starts, pays for it there: nothing while the
//! process has one thread (`llmbench run` grows it before its runtimes start), one
//! grace period after. A leaf: it knows nothing of what the descriptors are for.

/// The most descriptors reserved, whatever is asked: a table of 2 MiB of kernel memory
/// (8 bytes a slot). An open-loop plan counts every work item as possibly in flight, so
/// a long soak would otherwise ask for millions; a run that does hold more sockets
/// grows the table past this as it goes.
const MOST: u64 = 1 << 18;

/// Grows the descriptor table to hold `count` descriptors ([`slots`]), by duplicating
/// a descriptor onto the last slot wanted and closing the copy. A table that already
/// holds them is left as it is. Linux only, where growing is what stalls; elsewhere,
/// and on any error, nothing is done and the run grows the table as it goes.
pub fn reserve(count: u64) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft);
        if let Some(last) = slots(count, limit).checked_sub(1) {
            grow_to(last);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = count;
}

/// The slots to reserve for `count` descriptors under an open-file soft limit of
/// `limit`: no more than the limit allows (a descriptor at or past it cannot be
/// opened) nor [`MOST`].
fn slots(count: u64, limit: u64) -> u64 {
    count.min(limit).min(MOST)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn grow_to(last: u64) {
    use std::os::fd::AsRawFd;
    let Ok(last) = libc::c_int::try_from(last) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_are_capped_by_the_limit_and_by_the_most() {
        assert_eq!(slots(3000, 20_000), 3000);
        assert_eq!(slots(3000, 1024), 1024);
        assert_eq!(slots(0, 1024), 0);
        assert_eq!(slots(10_000_000, u64::MAX), MOST);
        assert_eq!(slots(u64::MAX, 0), 0);
    }

    /// The size of this process's descriptor table, as the kernel reports it: the
    /// `FDSize` line of `/proc/self/status`.
    #[cfg(target_os = "linux")]
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_table_holds_what_was_reserved_and_nothing_stays_open() {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0;
        let wanted = 3000.min(limit);
        reserve(wanted);
        assert!(table_size() >= wanted, "{} < {wanted}", table_size());
        // The copy made on the last slot is closed again.
        let last = libc::c_int::try_from(wanted - 1).unwrap();
        // SAFETY: F_GETFD on a descriptor number only reads its flags, or fails.
        let flags = unsafe { libc::fcntl(last, libc::F_GETFD) };
        assert_eq!(flags, -1, "descriptor {last} was left open");
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
