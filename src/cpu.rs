//! CPU time spent by the load generator: the whole process except the threads of an
//! embedded server, named by the caller. When the client is not the bottleneck, latency hides what a runtime or an
//! HTTP library costs; CPU time per request shows it.
//!
//! Also the CPU clocks of single threads (a runtime's own, found by id) and what share
//! of a set of threads' capacity their CPU time used: how close the client's runtime
//! came to saturation.

use std::time::Duration;

/// CPU time (user and system) the process has used, less what the threads whose name
/// starts with `excluded_threads` (an embedded server's) have used so far. `None` where
/// it cannot be measured (outside Linux).
pub fn client_cpu(excluded_threads: &str) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(threads_cpu(excluded_threads)?))
}

/// The kernel's id of the calling thread, by which [`thread_cpu_time`] reads its CPU
/// clock from any thread. `None` outside Linux.
#[cfg(target_os = "linux")]
pub fn current_thread_id() -> Option<i32> {
    // SAFETY: gettid has no preconditions.
    Some(unsafe { libc::gettid() })
}

#[cfg(not(target_os = "linux"))]
pub fn current_thread_id() -> Option<i32> {
    None
}

/// The CPU time (user and system) thread `tid` of this process has used since it
/// started; `None` once it has exited, or outside Linux.
#[cfg(target_os = "linux")]
pub fn thread_cpu_time(tid: i32) -> Option<Duration> {
    thread_cpu(tid)
}

#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time(_tid: i32) -> Option<Duration> {
    None
}

/// The share of `threads` threads' capacity over `wall` that `cpu` seconds used: 1.0
/// when every one of them was on a core the whole time. 0 for an empty span.
pub fn utilisation(cpu: Duration, wall: Duration, threads: usize) -> f64 {
    let capacity = wall.as_secs_f64() * threads.max(1) as f64;
    if capacity > 0.0 {
        cpu.as_secs_f64() / capacity
    } else {
        0.0
    }
}

/// Keeps the calling thread busy until it has used `work` of CPU time: simulated
/// post-processing that costs the same CPU however many threads compete for the cores
/// (spinning for wall time would do less work whenever the thread is preempted).
pub fn spin(work: Duration) {
    let Some(start) = own_cpu() else {
        let until = std::time::Instant::now() + work;
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        return;
    };
    while own_cpu().is_some_and(|now| now - start < work) {
        std::hint::spin_loop();
    }
}

/// The calling thread's CPU time.
#[cfg(target_os = "linux")]
fn own_cpu() -> Option<Duration> {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

#[cfg(not(target_os = "linux"))]
fn own_cpu() -> Option<Duration> {
    None
}

#[cfg(target_os = "linux")]
fn process_cpu() -> Option<Duration> {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)?
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// CPU time of the live threads whose name starts with `prefix`, read from each
/// thread's CPU clock (nanosecond resolution, unlike the tick counts in /proc).
#[cfg(target_os = "linux")]
fn threads_cpu(prefix: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok());
        if let (true, Some(tid)) = (name.starts_with(prefix), tid) {
            total += thread_cpu(tid).unwrap_or_default();
        }
    }
    Some(total)
}

/// The CPU clock of thread `tid`: Linux encodes it as `(!tid << 3) | 6` (a per-thread
/// scheduler clock), the clock id glibc's `pthread_getcpuclockid` returns.
#[cfg(target_os = "linux")]
fn thread_cpu(tid: i32) -> Option<Duration> {
    clock((!tid << 3) | 6)
}

#[cfg(target_os = "linux")]
fn clock(id: libc::clockid_t) -> Option<Duration> {
    // SAFETY: clock_gettime only writes the struct it is given.
    let ts = unsafe {
        let mut ts = std::mem::zeroed::<libc::timespec>();
        (libc::clock_gettime(id, &mut ts) == 0).then_some(ts)?
    };
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn process_cpu() -> Option<Duration> {
    None
}

#[cfg(not(target_os = "linux"))]
fn threads_cpu(_prefix: &str) -> Option<Duration> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    const WORK: Duration = Duration::from_millis(30);

    /// A thread that spins until its own CPU clock shows `WORK` is seen doing it by the
    /// clock read from another thread, by name, and in the process total. Loaded or not,
    /// the machine gives the same figures: the work is counted in CPU time, not wall time.
    #[test]
    fn thread_clocks_count_a_named_threads_work() {
        let before = process_cpu().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("cpu-test-busy".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                spin(WORK);
                done_tx.send(tid).unwrap();
                stop_rx.recv().unwrap();
            })
            .unwrap();
        let tid = done_rx.recv().unwrap();
        assert!(thread_cpu(tid).unwrap() >= WORK);
        assert!(threads_cpu("cpu-test-busy").unwrap() >= WORK);
        assert_eq!(threads_cpu("no-such-thread"), Some(Duration::ZERO));
        stop_tx.send(()).unwrap();
        worker.join().unwrap();
        assert!(process_cpu().unwrap() - before >= WORK);
    }

    #[test]
    fn utilisation_is_cpu_over_the_threads_capacity() {
        let second = Duration::from_secs(1);
        assert_eq!(utilisation(second, second, 1), 1.0);
        assert_eq!(utilisation(second, 2 * second, 2), 0.25);
        assert_eq!(utilisation(second, Duration::ZERO, 1), 0.0);
        assert!(current_thread_id().and_then(thread_cpu_time).is_some());
    }
}
