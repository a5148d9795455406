//! A strategy runtime's own health, measured on it while the strategy runs: how late a
//! timer asked for every millisecond fires there (the runtime's lag), and how much CPU
//! the threads that poll its tasks used. Every timestamp the client takes waits for
//! its task to be polled, so a runtime that wakes tasks late makes the server look
//! slow; these figures say when the client, not the server, set the pace.
//!
//! Measures only; judging the figures is the summary's.

use crate::recorder::{micros, new_histogram};
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the probe asks to wake: tokio's timer resolution, the finest a runtime
/// can wake anything. On a busy runtime a wake-up costs next to nothing; on an idle one
/// it costs a parked thread's whole round trip through the kernel (about 30 µs on a
/// virtual machine, 3 % of a core), which [`RuntimeHealth::probe_cpu`] estimates.
pub const PROBE_PERIOD: Duration = Duration::from_millis(1);

/// What the probe measured of the runtime a strategy ran on.
#[derive(Clone)]
pub struct RuntimeHealth {
    /// How late each wake-up of the probe came, in microseconds: one sample per
    /// [`PROBE_PERIOD`] of the strategy's wall time.
    pub lag: Histogram<u64>,
    /// The strategy's wall time on the runtime, from the probe's start to its end.
    pub wall: Duration,
    /// CPU time of the threads that polled the strategy's tasks (the runtime's workers
    /// and the thread that started it); `None` where thread clocks cannot be read.
    pub cpu: Option<Duration>,
    /// Cores the runtime's threads could keep busy: its workers (1 on the
    /// single-threaded runtimes), but no more than the process may run on.
    pub threads: usize,
    /// The CPU time one wake-up of the probe cost a runtime of the same kind left idle,
    /// measured before the run ([`crate::runtime::probe_idle_cost`]); `None` where it was
    /// not measured (an external program's loop, thread clocks unreadable).
    pub probe_idle_cost: Option<Duration>,
}

impl std::fmt::Debug for RuntimeHealth {
    /// The lag's summary, not the histogram's every bucket.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lag = &self.lag;
        let [p50, p99] = [0.5, 0.99].map(|q| lag.value_at_quantile(q));
        f.debug_struct("RuntimeHealth")
            .field("lag_samples", &lag.len())
            .field("lag_us_p50_p99_max", &[p50, p99, lag.max()])
            .field("wall", &self.wall)
            .field("cpu", &self.cpu)
            .field("threads", &self.threads)
            .field("probe_idle_cost", &self.probe_idle_cost)
            .finish()
    }
}

impl RuntimeHealth {
    /// The share of the runtime's threads' capacity its CPU time used (1.0: every
    /// thread busy the whole time).
    pub fn utilisation(&self) -> Option<f64> {
        let cpu = self.cpu?;
        Some(crate::cpu::utilisation(cpu, self.wall, self.threads))
    }

    /// The probe's own share of the threads' CPU time, estimated: its wake-ups (one per
    /// lag sample; the samples a stall owed come in one wake-up, on a busy runtime) at
    /// their idle cost, in the share of the threads' capacity the strategy left idle,
    /// since a wake-up costs that much only when it finds its thread parked. That share
    /// is the capacity less the CPU time measured, the probe's own excepted: with `n`
    /// wake-ups at `c` each over capacity `T` of which the threads used `R`, the probe's
    /// `P = n·c·(1 − (R − P)/T)`, so `P = n·c·(1 − R/T) / (1 − n·c/T)`. A model: on two
    /// workers, one busy and one parked, a wake-up on the parked one costs in full and
    /// is counted half. Not the client's work: a strategy that waits long for few
    /// requests would otherwise show the probe as its cost per request. Never more than
    /// the CPU time measured.
    pub fn probe_cpu(&self) -> Option<Duration> {
        let (per_wake, cpu) = (self.probe_idle_cost?, self.cpu?);
        let every_wake = per_wake.mul_f64(self.lag.len() as f64);
        let used = self.utilisation()?.min(1.0);
        let probe_share = crate::cpu::utilisation(every_wake, self.wall, self.threads);
        let probe = match probe_share < 1.0 {
            true => every_wake.mul_f64((1.0 - used) / (1.0 - probe_share)),
            false => every_wake,
        };
        Some(probe.min(cpu))
    }
}

/// The kernel ids of the threads that poll a runtime's tasks, registered by each
/// thread as it starts, so their CPU clocks can be read while they still run.
#[derive(Debug, Clone, Default)]
pub struct RuntimeThreads(Arc<Mutex<Vec<i32>>>);

impl RuntimeThreads {
    /// Registers the calling thread.
    pub fn register_current(&self) {
        if let Some(tid) = crate::cpu::current_thread_id() {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(tid);
        }
    }

    /// CPU time the registered threads have used since they started; `None` when none
    /// could be read.
    fn cpu(&self) -> Option<Duration> {
        let tids = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tids.into_iter()
            .filter_map(crate::cpu::thread_cpu_time)
            .reduce(|a, b| a + b)
    }
}

/// Runs `future` on the current runtime with the lag probe beside it, as a task of its
/// own, and returns the future's output and the runtime's health once it is done. The
/// calling thread's CPU time counts with the runtime's threads' (it polls `future`);
/// `count` is how many cores they could have kept busy.
pub async fn probed<Fut: Future>(
    future: Fut,
    threads: RuntimeThreads,
    count: usize,
) -> (Fut::Output, RuntimeHealth) {
    threads.register_current();
    // From here: building the runtime is not the strategy's (a worker thread still
    // starting may count its start).
    let cpu_before = threads.cpu();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let start = Instant::now();
    let probe = tokio::spawn(probe(stopped));
    let output = future.await;
    let wall = start.elapsed();
    let _ = stop.send(tokio::time::Instant::now());
    let lag = probe.await.unwrap_or_else(|_| new_histogram());
    let health = RuntimeHealth {
        lag,
        wall,
        cpu: threads
            .cpu()
            .map(|cpu| cpu.saturating_sub(cpu_before.unwrap_or_default())),
        threads: count,
        probe_idle_cost: None,
    };
    (output, health)
}

/// Asks to wake every [`PROBE_PERIOD`], on a fixed schedule, and records how late each
/// wake-up came, until the instant `stop` sends. Wake-ups a stall made it miss all come
/// due when the stall ends, each late by its own amount (a 20 ms stall gives 20
/// samples, 20 ms down to 1 ms): the lag a timer falling due at any moment would have
/// seen, corrected for coordinated omission as wrk2 corrects latencies, and one sample
/// per millisecond of the strategy, those still owed at its end included.
async fn probe(mut stop: tokio::sync::oneshot::Receiver<tokio::time::Instant>) -> Histogram<u64> {
    let mut lag = new_histogram();
    let mut due = tokio::time::Instant::now();
    let sleep = tokio::time::sleep_until(due);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            end = &mut stop => {
                let end = end.unwrap_or_else(|_| tokio::time::Instant::now());
                while due <= end {
                    lag.saturating_record(micros(due.elapsed()));
                    due += PROBE_PERIOD;
                }
                return lag;
            }
            () = sleep.as_mut() => {}
        }
        lag.saturating_record(micros(due.elapsed()));
        due += PROBE_PERIOD;
        sleep.as_mut().reset(due);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tolerance for the probe's count against the span in whole milliseconds: one
    /// sample is due at its start, and the start and end of the span are read a few
    /// microseconds from the probe's own.
    const EDGE_TICKS: u64 = 3;

    /// The probe's estimate: its wake-ups at their idle cost, times the idle share.
    #[test]
    fn the_probes_cpu_is_its_wake_ups_at_their_idle_cost_in_the_idle_share() {
        let mut lag = new_histogram();
        lag.record_n(5, 1000).unwrap();
        let health = |cpu_ms: u64, cost_us: Option<u64>| RuntimeHealth {
            lag: lag.clone(),
            wall: Duration::from_secs(1),
            cpu: Some(Duration::from_millis(cpu_ms)),
            threads: 2,
            probe_idle_cost: cost_us.map(Duration::from_micros),
        };
        // 1,000 wake-ups at 30 µs (30 ms, 1.5 % of two threads' second), the threads 10 %
        // busy in all: 30 · 0.9 / 0.985 = 27.41 ms.
        let probe_s = |cpu_ms, cost_us| health(cpu_ms, Some(cost_us)).probe_cpu().unwrap();
        let idle_mostly = probe_s(200, 30).as_secs_f64();
        assert!(
            (idle_mostly - 0.03 * 0.9 / 0.985).abs() < 1e-9,
            "{idle_mostly}"
        );
        // An idle runtime's CPU time is all the probe's.
        assert!((probe_s(30, 30).as_secs_f64() - 0.03).abs() < 1e-9);
        // Both threads busy the whole time: the wake-ups cost nothing more.
        assert_eq!(health(2000, Some(30)).probe_cpu(), Some(Duration::ZERO));
        // Never more than what the threads used.
        assert_eq!(
            health(10, Some(30)).probe_cpu(),
            Some(Duration::from_millis(10))
        );
        assert_eq!(health(200, None).probe_cpu(), None);
    }

    #[test]
    fn an_idle_runtime_wakes_the_probe_on_time_once_a_millisecond() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sleep = async { tokio::time::sleep(Duration::from_millis(200)).await };
        let ((), health) = runtime.block_on(probed(sleep, RuntimeThreads::default(), 1));
        let ms = health.wall.as_millis() as u64;
        let samples = health.lag.len();
        assert!(
            samples.abs_diff(ms) <= EDGE_TICKS,
            "{samples} samples in {ms} ms"
        );
        assert_eq!(health.threads, 1);
        #[cfg(target_os = "linux")]
        assert!(health.utilisation().unwrap() < 0.9, "{health:?}");
    }

    #[test]
    fn a_stall_on_the_runtime_shows_as_lag_with_a_sample_for_every_millisecond() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stall = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            crate::cpu::spin(Duration::from_millis(150));
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let ((), health) = runtime.block_on(probed(stall, RuntimeThreads::default(), 1));
        let ms = health.wall.as_millis() as u64;
        assert!(health.lag.len().abs_diff(ms) <= EDGE_TICKS, "{health:?}");
        assert!(health.lag.max() >= 150_000, "{health:?}");
        // The stall is most of the span: the median wake-up is late.
        assert!(health.lag.value_at_quantile(0.5) > 5_000, "{health:?}");
        // The spin is counted on the thread's CPU clock.
        #[cfg(target_os = "linux")]
        assert!(
            health.cpu.unwrap() >= Duration::from_millis(150),
            "{health:?}"
        );
    }
}
