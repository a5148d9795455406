//! The capacity model of an inference server: at most `max_concurrent` sequences decode
//! at once, the rest wait in a bounded queue, the first token costs a fixed overhead
//! plus prefill time per prompt token, and every gap between tokens stretches with the
//! number of sequences decoding (a load factor). This is what makes a concurrency sweep
//! show a knee instead of a straight line.
//!
//! Owns the slots, the queue and the pacing they impose; must not touch the wire format
//! or the rate limits.

use crate::scenario::CapacityConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The live state: free slots, and how many requests wait for one.
pub struct Capacity {
    config: CapacityConfig,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// A request's place: waiting for a slot, then holding it until its response ends.
pub struct Place {
    capacity: Arc<Capacity>,
    permit: Option<OwnedSemaphorePermit>,
    waiting: bool,
}

impl Capacity {
    pub fn new(config: CapacityConfig) -> Arc<Capacity> {
        Arc::new(Capacity {
            slots: Arc::new(Semaphore::new(config.max_concurrent.get())),
            config,
            queued: AtomicUsize::new(0),
        })
    }

    /// A place in the queue, or the status to refuse with when the queue is full.
    pub fn enqueue(self: &Arc<Self>) -> Result<Place, u16> {
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        let free = self.slots.available_permits();
        if queued >= self.config.queue.get() + free {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.config.queue_full_status.0);
        }
        Ok(Place {
            capacity: self.clone(),
            permit: None,
            waiting: true,
        })
    }

    /// Sequences decoding now.
    pub fn running(&self) -> usize {
        self.config.max_concurrent.get() - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Overhead plus prefill of `prompt_tokens`.
    pub fn time_to_first_token(&self, prompt_tokens: u32) -> Duration {
        let ms = self.config.overhead_ms.0
            + self.config.prefill_us_per_token.0 * f64::from(prompt_tokens) / 1000.0;
        saturating_duration(ms / 1000.0)
    }

    /// A drawn gap stretched by the current load.
    pub fn stretch(&self, gap: Duration) -> Duration {
        let running = self.running().max(1) as f64;
        saturating_duration(gap.as_secs_f64() * (1.0 + self.config.load_factor.0 * (running - 1.0)))
    }
}

/// The scenario's ranges keep every product far from overflow, but a duration built from
/// a product of two of them is saturated rather than trusted to.
fn saturating_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

impl Place {
    /// Waits for a slot (until the response ends, the slot stays taken).
    pub async fn admitted(&mut self) {
        if self.permit.is_some() {
            return;
        }
        let slots = self.capacity.slots.clone();
        self.permit = slots.acquire_owned().await.ok();
        self.leave_queue();
    }

    fn leave_queue(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.capacity.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.leave_queue();
    }
}

/// How one response is paced by the capacity model; without one, not at all.
pub struct Pacing {
    place: Option<Place>,
    prefill: Duration,
}

impl Pacing {
    pub fn unlimited() -> Pacing {
        Pacing {
            place: None,
            prefill: Duration::ZERO,
        }
    }

    /// A response of `prompt_tokens` queued on `capacity`, or the refusal status.
    pub fn queued(capacity: &Arc<Capacity>, prompt_tokens: u32) -> Result<Pacing, u16> {
        Ok(Pacing {
            place: Some(capacity.enqueue()?),
            prefill: capacity.time_to_first_token(prompt_tokens),
        })
    }

    /// Waits for a decode slot; returns when the response's own clock starts (the
    /// prefill done). Without a capacity model: at once, from `received`.
    pub async fn start(&mut self, received: tokio::time::Instant) -> tokio::time::Instant {
        match &mut self.place {
            Some(place) => {
                place.admitted().await;
                tokio::time::Instant::now() + self.prefill
            }
            None => received,
        }
    }

    /// A drawn gap, stretched by the load when there is a capacity model.
    pub fn gap(&self, gap: Duration) -> Duration {
        self.place
            .as_ref()
            .map_or(gap, |p| p.capacity().stretch(gap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::QueueFullStatus;
    use crate::scenario::{Concurrency, NonNegative, QueueLength};

    fn config(max: u64, queue: usize) -> CapacityConfig {
        CapacityConfig {
            max_concurrent: Concurrency(max),
            queue: QueueLength(queue as u64),
            queue_full_status: QueueFullStatus(429),
            overhead_ms: NonNegative(5.0),
            prefill_us_per_token: NonNegative(100.0),
            load_factor: NonNegative(0.5),
        }
    }

    #[tokio::test]
    async fn slots_then_queue_then_refusal() {
        let capacity = Capacity::new(config(1, 1));
        let mut first = capacity.enqueue().unwrap();
        first.admitted().await;
        let _second = capacity.enqueue().unwrap();
        assert_eq!(capacity.queued(), 1);
        assert_eq!(capacity.enqueue().err(), Some(429));
        drop(first);
        assert_eq!(capacity.running(), 0);
    }

    #[test]
    fn prefill_and_load_factor() {
        let capacity = Capacity::new(config(4, 0));
        assert_eq!(
            capacity.time_to_first_token(1000),
            Duration::from_millis(105)
        );
        assert_eq!(
            capacity.stretch(Duration::from_millis(10)),
            Duration::from_millis(10)
        );
    }
}
