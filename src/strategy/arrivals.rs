//! Releases work items at their intended times, for a strategy to consume.
//!
//! The pacer is a dedicated OS thread, not a tokio timer: tokio's timer wheel has 1 ms
//! granularity, which under-delivers any rate above a few hundred per second. The
//! thread sleeps until shortly before each due time (with its timer slack at 1 µs, the
//! OS timer is good to tens of microseconds) and, when the process has a core to
//! spare, spins the rest of the way; then it hands the item to the strategy through a
//! queue. Due times are `start + offset`, so lateness never accumulates.

use super::Dispatcher;
use crate::workload::{ItemStream, WorkItem};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Below this much time to go, the pacer spins instead of sleeping, when it may.
const SPIN: Duration = Duration::from_micros(100);
/// Longest single sleep, so an interrupt is noticed promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// The stream of arrived work items, in arrival order.
pub struct Arrivals {
    queue: Arc<Queue>,
    pacer: Option<JoinHandle<()>>,
}

/// Arrived items waiting for a strategy to take them. Held as runs of consecutive
/// indices (each a first index and a count), not as items: a batch of ten million
/// arrives at once and takes a few hundred bytes. Only a dropped arrival starts a new
/// run, and drops happen only while the queue is at its `max_queue`. The items are drawn
/// as they are taken, from a stream of the queue's own that only moves forward.
struct Queue {
    runs: Mutex<Runs>,
    ready: Notify,
    /// Item `i` of the sequence is this queue's when `i mod stride` is its copy.
    stride: usize,
}

struct Runs {
    runs: VecDeque<Run>,
    /// The items, positioned at or before the first run's next item.
    items: ItemStream,
    /// The pacer has released its last item (or stopped).
    closed: bool,
}

struct Run {
    /// The index of the run's next item.
    next: u64,
    left: u64,
}

impl Run {
    /// The index the item after the run's last would have.
    fn end(&self, stride: usize) -> u64 {
        self.next + self.left * stride as u64
    }
}

impl Queue {
    fn new(items: ItemStream, stride: usize) -> Queue {
        Queue {
            runs: Mutex::new(Runs {
                runs: VecDeque::new(),
                items,
                closed: false,
            }),
            ready: Notify::new(),
            stride,
        }
    }

    fn push(&self, index: u64) {
        {
            let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
            match runs.runs.back_mut() {
                Some(run) if run.end(self.stride) == index => run.left += 1,
                _ => runs.runs.push_back(Run {
                    next: index,
                    left: 1,
                }),
            }
        }
        self.ready.notify_one();
    }

    /// The next arrived item, `Err(closed)` when there is none.
    fn pop(&self) -> Result<WorkItem, bool> {
        let mut guard = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = &mut *guard;
        let Some(run) = runs.runs.front_mut() else {
            return Err(runs.closed);
        };
        let index = run.next;
        run.next += self.stride as u64;
        run.left -= 1;
        if run.left == 0 {
            runs.runs.pop_front();
        }
        // The items before it belong to the other copies, or were dropped.
        let item = runs
            .items
            .find(|item| u64::from(item.index) == index)
            .expect("an arrived item is in the sequence");
        Ok(item)
    }

    fn close(&self) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_one();
    }
}

/// Closes the queues when the pacer returns, however it returns.
struct CloseOnDrop<'a>(&'a [Arc<Queue>]);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        for queue in self.0 {
            queue.close();
        }
    }
}

impl Arrivals {
    /// Starts releasing the dispatcher's items, dealt round robin to `copies` streams
    /// (item `i` to stream `i mod copies`), one for each copy of a strategy; one pacer
    /// keeps the schedule for all. With `max_queue`, an item arriving while that many
    /// arrived items still wait to be sent is dropped (and recorded as such).
    pub fn start(
        dispatcher: Dispatcher,
        max_queue: Option<u64>,
        copies: usize,
    ) -> std::io::Result<Vec<Arrivals>> {
        let stride = copies.max(1);
        let queues: Vec<Arc<Queue>> = (0..stride)
            .map(|_| Arc::new(Queue::new(dispatcher.items().iter(), stride)))
            .collect();
        let released = queues.clone();
        let pacer = std::thread::Builder::new()
            .name("llmbench-pacer".into())
            .spawn(move || release(&dispatcher, max_queue, &released))?;
        let mut pacer = Some(pacer);
        Ok(queues
            .into_iter()
            .map(|queue| Arrivals {
                queue,
                pacer: pacer.take(),
            })
            .collect())
    }

    /// The next arrived item, waiting for it if it is not due yet; `None` once every
    /// item has been released (or the run is interrupted). Cancel-safe.
    pub async fn next(&mut self) -> Option<WorkItem> {
        loop {
            match self.queue.pop() {
                Ok(item) => return Some(item),
                Err(true) => break,
                // A release after the pop leaves a permit, so this wait cannot miss it.
                Err(false) => self.queue.ready.notified().await,
            }
        }
        if let Some(pacer) = self.pacer.take() {
            // The queues close when the pacer returns, so this does not block.
            let _ = pacer.join();
        }
        None
    }
}

fn release(dispatcher: &Dispatcher, max_queue: Option<u64>, queues: &[Arc<Queue>]) {
    let _close = CloseOnDrop(queues);
    let epoch = dispatcher.epoch();
    let spin = spin_window();
    precise_sleeps();
    let mut items = dispatcher.items().iter();
    loop {
        let Some(item) = items.next() else { return };
        if dispatcher.is_cancelled() || !pace_until(epoch + item.at, spin, dispatcher) {
            return;
        }
        if max_queue.is_some_and(|max| dispatcher.waiting() >= max) {
            dispatcher.drop_arrival(&item);
            continue;
        }
        dispatcher.arrived();
        let index = u64::from(item.index);
        queues[(index % queues.len() as u64) as usize].push(index);
    }
}

/// How long before a due time the pacer stops sleeping and spins: [`SPIN`], unless the
/// process may use only one core, where a spinning pacer would hold off the runtime
/// that sends the items (measured: 10,000 streams on one core, the client's runtime
/// lag p99 went to 6.5 ms, and under real-time priority nothing could preempt it).
fn spin_window() -> Duration {
    match std::thread::available_parallelism() {
        Ok(cores) if cores.get() > 1 => SPIN,
        _ => Duration::ZERO,
    }
}

/// Asks the OS to wake this thread's sleeps on time: Linux lets a normal thread's
/// timers fire up to 50 µs late by default (its timer slack), to batch wake-ups. A
/// refusal leaves the default: sleeps a little later, the spin makes up for it.
#[cfg(target_os = "linux")]
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes a number of nanoseconds and touches only the
    // calling thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

#[cfg(not(target_os = "linux"))]
fn precise_sleeps() {}

/// Waits until `due`, spinning its last `spin`; false if the run was interrupted first.
fn pace_until(due: Instant, spin: Duration, dispatcher: &Dispatcher) -> bool {
    loop {
        let now = Instant::now();
        if now >= due {
            return true;
        }
        if dispatcher.is_cancelled() {
            return false;
        }
        let left = due - now;
        if left > spin {
            std::thread::sleep((left - spin).min(MAX_SLEEP));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two copies' queues fed as the pacer feeds them, with arrivals dropped on the way
    /// and taken now and then: each hands out exactly its own items, whole and in order.
    #[test]
    fn queues_hand_out_their_arrivals_across_drops() {
        let config: crate::scenario::WorkloadConfig =
            toml::from_str("requests = 40\nseed = 3").unwrap();
        let items = crate::workload::generate(&config, None, &[]);
        let all: Vec<WorkItem> = items.iter().collect();
        let queues = [Queue::new(items.iter(), 2), Queue::new(items.iter(), 2)];
        let dropped = |index: u64| index % 7 == 3 || (10..14).contains(&index);
        let mut taken = [Vec::new(), Vec::new()];
        let take = |queue: &Queue, taken: &mut Vec<WorkItem>| {
            while let Ok(item) = queue.pop() {
                taken.push(item);
            }
        };
        for index in 0..40u64 {
            if !dropped(index) {
                queues[(index % 2) as usize].push(index);
            }
            if index % 5 == 4 {
                for (queue, taken) in queues.iter().zip(&mut taken) {
                    take(queue, taken);
                }
            }
        }
        for (copy, (queue, taken)) in queues.iter().zip(&mut taken).enumerate() {
            queue.close();
            take(queue, taken);
            assert_eq!(queue.pop(), Err(true));
            let expected: Vec<WorkItem> = all
                .iter()
                .filter(|item| {
                    let index = u64::from(item.index);
                    index % 2 == copy as u64 && !dropped(index)
                })
                .cloned()
                .collect();
            assert_eq!(*taken, expected, "copy {copy}");
        }
    }
}
