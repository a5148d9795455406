//! The mock's pacing timer: deadlines kept to tens of microseconds, where tokio's timer
//! rounds each one up to its next millisecond tick (a token of a 20 ms stream went out
//! 1.2 ms late at the median, and every TTFT carried that offset).
//!
//! Hand-written, because no maintained crate offers a sub-millisecond timer on tokio's
//! reactor: one Linux `timerfd` per mock, always armed for the earliest deadline, is
//! registered with the reactor like a socket, so its expiry wakes the runtime's own
//! `epoll_wait` and the tasks whose deadlines have passed run on that same thread. A
//! binary heap orders the deadlines. No extra thread and no spinning: idle it costs
//! nothing, and under load one expiry (a `read` and a re-arm) serves every deadline due
//! by then, however many streams share them; per token the cost is a heap push and pop.
//! Elsewhere than Linux, tokio's timer is used.
//!
//! Under load, wake-ups are put off to a grid ([`WakeGrid`]) shared by every stream of
//! the mock, so that one expiry serves many streams and, over HTTP/2, one write carries
//! many tokens.
//!
//! Owns when a paced step may run; what runs then is the caller's.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A handle to the mock's timer; cheap to share.
pub(super) struct PacingTimer {
    #[cfg(target_os = "linux")]
    deadlines: std::sync::Arc<linux::Deadlines>,
}

impl PacingTimer {
    /// Starts the timer on the current tokio runtime (its driver is a task there).
    pub fn start() -> std::io::Result<PacingTimer> {
        Ok(PacingTimer {
            #[cfg(target_os = "linux")]
            deadlines: linux::Deadlines::start()?,
        })
    }

    /// Waits until `at`, to within the kernel's wake-up latency.
    pub async fn sleep_until(&self, at: Instant) {
        #[cfg(target_os = "linux")]
        linux::Sleep::new(&self.deadlines, at).await;
        #[cfg(not(target_os = "linux"))]
        tokio::time::sleep_until(at.into()).await;
    }
}

/// How long wake-ups are put off, per token a second the whole mock sends: 500,000
/// tokens a second (10,000 streams at 20 ms) make it a millisecond.
const PUT_OFF_PER_TOKEN_RATE: Duration = Duration::from_nanos(2);

/// The most a wake-up is put off: the pacing error a stream may get for it.
const MOST_PUT_OFF: Duration = Duration::from_millis(1);

/// How often the mock's token rate is sampled.
const RATE_SAMPLE: Duration = Duration::from_millis(20);

/// When paced steps wake up: on a grid shared by every stream of the mock, whose
/// spacing grows with the mock's token rate. A write to a loopback socket costs the
/// mock about 5–10 µs of kernel time, most of it waking the reader; a timer expiry and
/// re-arm about as much again. Waking for every deadline, a mock at 5,000 HTTP/2
/// streams spent three fifths of its core in the kernel at a few tokens per write, and
/// over HTTP/1.1, with deadlines spread evenly, the expiries alone cost as much as the
/// sends. At light load the grid is microseconds apart and pacing stays exact; under
/// load each wake-up serves every stream due by then, for at most [`MOST_PUT_OFF`] of
/// pacing error.
pub(super) struct WakeGrid {
    /// The grid's origin.
    epoch: Instant,
    /// The grid's spacing, in nanoseconds.
    spacing_ns: AtomicU64,
    /// When the token count was last sampled, and what it was.
    sample: Mutex<(Instant, u64)>,
}

impl WakeGrid {
    pub fn new() -> WakeGrid {
        WakeGrid {
            epoch: Instant::now(),
            spacing_ns: AtomicU64::new(0),
            sample: Mutex::new((Instant::now(), 0)),
        }
    }

    /// The first grid point at or after `at`; `tokens_sent` is the mock's count of
    /// tokens sent so far, whose rate sets the spacing.
    pub fn wake_at(&self, at: Instant, tokens_sent: u64) -> Instant {
        let since = at.saturating_duration_since(self.epoch);
        at + put_off(since, self.spacing(tokens_sent))
    }

    /// The grid's spacing, from the token rate over the last sample (re-sampled by
    /// whichever stream asks first once it is due).
    pub fn spacing(&self, tokens_sent: u64) -> Duration {
        if let Ok(mut sample) = self.sample.try_lock() {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(sample.0);
            if elapsed >= RATE_SAMPLE {
                // The counters are zeroed when a run starts: no rate then.
                let sent = tokens_sent.saturating_sub(sample.1) as f64;
                let spacing = PUT_OFF_PER_TOKEN_RATE.mul_f64(sent / elapsed.as_secs_f64());
                let spacing = spacing.min(MOST_PUT_OFF).as_nanos() as u64;
                self.spacing_ns.store(spacing, Ordering::Relaxed);
                *sample = (now, tokens_sent);
            }
        }
        Duration::from_nanos(self.spacing_ns.load(Ordering::Relaxed))
    }
}

/// How far an instant `since` the grid's origin is from the next point of a grid
/// `spacing` apart (zero on a point, and when there is no grid).
fn put_off(since: Duration, spacing: Duration) -> Duration {
    let (since, spacing) = (since.as_nanos(), spacing.as_nanos());
    if spacing == 0 {
        return Duration::ZERO;
    }
    let late = (spacing - since % spacing) % spacing;
    Duration::from_nanos(u64::try_from(late).unwrap_or(0))
}

#[cfg(target_os = "linux")]
mod linux {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::future::Future;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::pin::Pin;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};
    use tokio::io::unix::AsyncFd;

    /// The pending deadlines and the timerfd that fires for the earliest.
    pub(super) struct Deadlines {
        pending: Mutex<Pending>,
        fd: Arc<AsyncFd<OwnedFd>>,
    }

    #[derive(Default)]
    struct Pending {
        heap: BinaryHeap<Reverse<Entry>>,
        /// The deadline the timerfd is armed for.
        armed: Option<Instant>,
        /// Orders entries with equal deadlines, and makes every entry distinct.
        serial: u64,
    }

    struct Entry {
        at: Instant,
        serial: u64,
        waker: Waker,
    }

    impl PartialEq for Entry {
        fn eq(&self, other: &Entry) -> bool {
            (self.at, self.serial) == (other.at, other.serial)
        }
    }
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
            (self.at, self.serial).cmp(&(other.at, other.serial))
        }
    }

    impl Deadlines {
        pub fn start() -> std::io::Result<Arc<Deadlines>> {
            // SAFETY: plain system call; the descriptor it returns is owned below.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an `OwnedFd` stays open, and is the same descriptor, until dropped
            // with the `AsyncFd`.
            let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
            let deadlines = Arc::new(Deadlines {
                pending: Mutex::new(Pending::default()),
                fd: Arc::new(fd),
            });
            tokio::spawn(drive(deadlines.clone()));
            Ok(deadlines)
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Wakes `waker` at `at` (a future instant).
        fn register(&self, at: Instant, waker: Waker) {
            let mut pending = self.lock();
            pending.serial += 1;
            let serial = pending.serial;
            pending.heap.push(Reverse(Entry { at, serial, waker }));
            if pending.armed.is_none_or(|armed| at < armed) {
                pending.armed = Some(at);
                self.arm(Some(at));
            }
        }

        /// Wakes every entry due by now and arms the timerfd for the next.
        fn fire(&self) {
            let mut due = Vec::new();
            {
                let mut pending = self.lock();
                let now = Instant::now();
                while let Some(Reverse(entry)) = pending.heap.peek()
                    && entry.at <= now
                {
                    let Some(Reverse(entry)) = pending.heap.pop() else {
                        break;
                    };
                    due.push(entry.waker);
                }
                pending.armed = pending.heap.peek().map(|Reverse(entry)| entry.at);
                self.arm(pending.armed);
            }
            // Woken outside the lock: a woken task on another worker may register at once.
            due.into_iter().for_each(Waker::wake);
        }

        /// Arms the timerfd to expire at `at` (relative to now: an `Instant` has no
        /// absolute value to give the kernel), or disarms it.
        fn arm(&self, at: Option<Instant>) {
            // A zero value disarms a timerfd, so a deadline already past is 1 ns away.
            let after = at.map_or(Duration::ZERO, |at| {
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1))
            });
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: after.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                    tv_nsec: after.subsec_nanos().into(),
                },
            };
            // SAFETY: a valid timerfd and a valid spec; the old value is not asked for.
            // It cannot fail with these arguments, and a timer that did not arm would
            // only leave its sleepers to the next expiry.
            unsafe {
                libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut());
            }
        }
    }

    /// The timer's driver: on each expiry, wakes what is due.
    async fn drive(deadlines: Arc<Deadlines>) {
        let fd = deadlines.fd.clone();
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into an 8-byte buffer; the count read is
            // not needed, only that the descriptor is drained (EAGAIN when it was not
            // yet due, after a re-arm).
            unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                );
            }
            ready.clear_ready();
            deadlines.fire();
        }
    }

    /// A wait until `at`, woken by the timer.
    pub(super) struct Sleep<'a> {
        deadlines: &'a Deadlines,
        at: Instant,
        /// The waker registered, so a task polled again for another reason does not
        /// add an entry per poll.
        registered: Option<Waker>,
    }

    impl Sleep<'_> {
        pub fn new(deadlines: &Deadlines, at: Instant) -> Sleep<'_> {
            Sleep {
                deadlines,
                at,
                registered: None,
            }
        }
    }

    impl Future for Sleep<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if Instant::now() >= self.at {
                return Poll::Ready(());
            }
            if !self
                .registered
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                self.deadlines.register(self.at, cx.waker().clone());
                self.registered = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No grid until tokens flow; then one spaced 2 ns per token a second, at most 1 ms,
    /// whose points every wake-up lands on.
    #[test]
    fn the_grid_follows_the_token_rate() {
        let grid = WakeGrid::new();
        assert_eq!(grid.spacing(0), Duration::ZERO);
        let at = Instant::now() + Duration::from_millis(3);
        assert_eq!(grid.wake_at(at, 0), at, "no grid: at once");
        std::thread::sleep(RATE_SAMPLE + Duration::from_millis(5));
        // 5,000 tokens in 25 ms or more: at most 200,000 a second, at most 0.4 ms apart.
        let spacing = grid.spacing(5_000);
        assert!(
            spacing > Duration::ZERO && spacing <= Duration::from_micros(400),
            "{spacing:?}"
        );
        let wake = grid.wake_at(at, 5_000);
        assert!(wake >= at && wake - at < spacing, "{:?} after", wake - at);
        let since = wake.duration_since(grid.epoch).as_nanos();
        assert_eq!(since % spacing.as_nanos(), 0, "on a grid point");
        // A rate far past 500,000 tokens a second is capped at 1 ms.
        std::thread::sleep(RATE_SAMPLE + Duration::from_millis(5));
        assert_eq!(grid.spacing(100_000_000), MOST_PUT_OFF);
    }

    #[test]
    fn wake_ups_are_put_off_to_the_next_grid_point() {
        let us = Duration::from_micros;
        assert_eq!(put_off(us(1234), Duration::ZERO), Duration::ZERO);
        assert_eq!(put_off(us(1234), us(500)), us(266));
        assert_eq!(put_off(us(1500), us(500)), Duration::ZERO);
        assert_eq!(put_off(us(1501), us(500)), us(499));
    }

    /// Sleeps end at or after their deadlines and in their order, whichever order they
    /// were registered in.
    #[tokio::test]
    async fn sleeps_end_after_their_deadlines_in_order() {
        let timer = std::sync::Arc::new(PacingTimer::start().unwrap());
        let start = Instant::now();
        let ends = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = [7u64, 2, 5, 3]
            .into_iter()
            .map(|ms| {
                let (timer, ends) = (timer.clone(), ends.clone());
                tokio::spawn(async move {
                    let at = start + Duration::from_millis(ms);
                    timer.sleep_until(at).await;
                    assert!(Instant::now() >= at);
                    ends.lock().unwrap().push(ms);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*ends.lock().unwrap(), [2, 3, 5, 7]);
    }
}
