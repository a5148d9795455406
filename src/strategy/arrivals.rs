//! Releases work items at their intended times, for a strategy to consume.
//!
//! The pacer is a dedicated OS thread, not a tokio timer: tokio's timer wheel has 1 ms
//! granularity, which under-delivers any rate above a few hundred per second. The
//! thread sleeps until shortly before each due time (the OS timer is good to tens of
//! microseconds) and spins the rest of the way, then hands the item to the strategy
//! through a channel. Due times are `start + offset`, so lateness never accumulates.

use super::Dispatcher;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Below this much time to go, the pacer spins instead of sleeping.
const SPIN: Duration = Duration::from_micros(100);
/// Longest single sleep, so an interrupt is noticed promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// The stream of arrived work items (their slots), in arrival order.
pub struct Arrivals {
    rx: mpsc::UnboundedReceiver<usize>,
    pacer: Option<JoinHandle<()>>,
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
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..copies.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        let pacer = std::thread::Builder::new()
            .name("llmbench-pacer".into())
            .spawn(move || release(&dispatcher, max_queue, &txs))?;
        let mut pacer = Some(pacer);
        Ok(rxs
            .into_iter()
            .map(|rx| Arrivals {
                rx,
                pacer: pacer.take(),
            })
            .collect())
    }

    /// The next arrived item, waiting for it if it is not due yet; `None` once every
    /// item has been released (or the run is interrupted).
    pub async fn next(&mut self) -> Option<usize> {
        let next = self.rx.recv().await;
        if next.is_none() {
            if let Some(pacer) = self.pacer.take() {
                // The channel closes when the pacer returns, so this does not block.
                let _ = pacer.join();
            }
        }
        next
    }
}

fn release(dispatcher: &Dispatcher, max_queue: Option<u64>, txs: &[mpsc::UnboundedSender<usize>]) {
    let epoch = dispatcher.epoch();
    for slot in 0..dispatcher.len() {
        if !pace_until(epoch + dispatcher.item(slot).at, dispatcher) {
            return;
        }
        if max_queue.is_some_and(|max| dispatcher.waiting() >= max) {
            dispatcher.drop_arrival(slot);
            continue;
        }
        dispatcher.arrived();
        if txs[slot % txs.len()].send(slot).is_err() {
            return;
        }
    }
}

/// Waits until `due`; false if the run was interrupted first.
fn pace_until(due: Instant, dispatcher: &Dispatcher) -> bool {
    loop {
        let now = Instant::now();
        if now >= due {
            return true;
        }
        if dispatcher.is_cancelled() {
            return false;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep((left - SPIN).min(MAX_SLEEP));
        } else {
            std::hint::spin_loop();
        }
    }
}
