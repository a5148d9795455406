//! The `adaptive` strategy: a limit on requests in flight that follows the server's
//! signals, AIMD on 429s or Vegas-style on latency.

use super::{Arrivals, Dispatcher, Feedback, Gate, Strategy};
use crate::recorder::timeline::LimitUnit;
use crate::scenario::AdaptiveSignal;
use crate::workload::WorkItem;
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// A pool whose size adapts: each attempt, first or retry, waits until fewer than the
/// current limit are in flight (and no pause asked by the server is running), then is
/// sent; a request waiting to retry holds no slot, so retries respect a lowered limit.
/// The limit starts at `initial`, never passes `ceiling`, and moves with what the
/// responses say: [`Aimd`] on 429s (`signal = "rate_limit"`), [`Vegas`] on latency
/// (`signal = "latency"`). A 429's `retry-after` pauses every send, retries included,
/// until it has passed. The limit in effect is recorded as it changes.
///
/// What production clients do instead of a fixed semaphore: Netflix's
/// concurrency-limits, Envoy's adaptive concurrency filter, Vector's adaptive request
/// concurrency; in Python, an `asyncio` worker pool whose size follows the same rules.
pub struct AdaptiveStrategy {
    pub ceiling: usize,
    pub initial: usize,
    pub signal: AdaptiveSignal,
}

impl Strategy for AdaptiveStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        let law = match self.signal {
            AdaptiveSignal::RateLimit => Law::Aimd(Aimd::new(self.initial, self.ceiling)),
            AdaptiveSignal::Latency => Law::Vegas(Vegas::new(self.initial, self.ceiling)),
        };
        dispatcher.record_limit(LimitUnit::InFlight, law.limit() as f64);
        let control = Arc::new(Control {
            state: Mutex::new(State {
                law,
                holding: HashSet::new(),
                retries_waiting: 0,
                in_flight: 0,
                paused_until: None,
            }),
            room: Notify::new(),
            dispatcher: dispatcher.clone(),
        });
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            while let Some(item) = arrivals.next().await {
                if !control.take_slot(&item, false).await {
                    break;
                }
                let (dispatcher, control) = (dispatcher.clone(), control.clone());
                tasks.spawn(async move {
                    dispatcher.execute_gated(&item, &*control).await;
                    // An attempt that never went (an interrupt, a spent budget) still
                    // holds its slot.
                    control.release(&item);
                });
                while tasks.try_join_next().is_some() {}
            }
            tasks.join_all().await;
        })
    }
}

/// The rule that moves the limit.
enum Law {
    Aimd(Aimd),
    Vegas(Vegas),
}

impl Law {
    fn limit(&self) -> usize {
        match self {
            Law::Aimd(aimd) => aimd.limit(),
            Law::Vegas(vegas) => vegas.limit(),
        }
    }

    fn hear(&mut self, feedback: &Feedback, in_flight: usize) {
        match self {
            Law::Aimd(aimd) => aimd.hear(feedback, in_flight),
            Law::Vegas(vegas) => vegas.hear(feedback, in_flight),
        }
    }
}

struct State {
    law: Law,
    /// Attempts in flight: the work items (by index) holding a slot.
    holding: HashSet<u32>,
    /// Retries waiting for a slot: they go before any first attempt, so the requests
    /// already refused get the quota that refills during a pause.
    retries_waiting: usize,
    in_flight: usize,
    /// No attempt goes before this (a server's `retry-after`).
    paused_until: Option<Instant>,
}

struct Control {
    state: Mutex<State>,
    /// Signalled when a slot frees up or the limit changes.
    room: Notify,
    dispatcher: Dispatcher,
}

impl Control {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for room under the limit and takes it for an attempt of `item` (a
    /// `retry`, or a first attempt, which waits while retries do); false if the run is
    /// interrupted.
    async fn take_slot(&self, item: &WorkItem, retry: bool) -> bool {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let pause = {
                let mut state = self.state();
                match state.paused_until {
                    Some(until) if until > Instant::now() => Some(until),
                    _ if state.in_flight < state.law.limit()
                        && (retry || state.retries_waiting == 0) =>
                    {
                        state.in_flight += 1;
                        state.holding.insert(item.index);
                        return true;
                    }
                    _ => None,
                }
            };
            let wait = async {
                match pause {
                    Some(until) => tokio::time::sleep_until(until.into()).await,
                    None => room.await,
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = self.dispatcher.cancelled() => return false,
            }
        }
    }

    /// Frees the slot an attempt of `item` holds, if it holds one.
    fn release(&self, item: &WorkItem) {
        let mut state = self.state();
        if state.holding.remove(&item.index) {
            state.in_flight -= 1;
            drop(state);
            self.room.notify_waiters();
        }
    }
}

impl Gate for Control {
    fn before_retry<'a>(&'a self, item: &'a WorkItem) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.state().retries_waiting += 1;
            // Interrupted: the dispatcher sees it too and sends nothing.
            self.take_slot(item, true).await;
            self.state().retries_waiting -= 1;
        })
    }

    fn after_attempt(&self, item: &WorkItem, feedback: &Feedback) {
        let changed = {
            let mut state = self.state();
            let before = state.law.limit();
            let in_flight = state.in_flight;
            state.law.hear(feedback, in_flight);
            if state.holding.remove(&item.index) {
                state.in_flight -= 1;
            }
            if let Some(wait) = feedback.retry_after.filter(|_| feedback.rate_limited) {
                let until = feedback.end.checked_add(wait);
                state.paused_until = state.paused_until.max(until);
            }
            let after = state.law.limit();
            (after != before).then_some(after)
        };
        if let Some(limit) = changed {
            self.dispatcher
                .record_limit(LimitUnit::InFlight, limit as f64);
        }
        self.room.notify_waiters();
    }
}

/// What the limit is multiplied by on a 429.
pub const AIMD_BACKOFF: f64 = 0.5;

/// Additive increase, multiplicative decrease on 429s, as TCP and Netflix's `AIMDLimit`
/// do, in windows: a window is `limit` clean responses to requests sent since the last
/// decrease, after which the limit grows by one (doubling while in slow start, before
/// the first 429). A 429 multiplies the limit by [`AIMD_BACKOFF`] (at least 1), once
/// per window: a 429 to a request sent before the last decrease reports the old limit
/// and is not counted again. A 429 that asks for a pause (`retry-after`) is TCP's
/// timeout: the halved limit becomes a threshold, and the limit restarts from 1 in slow
/// start up to it, so the requests waiting out the pause do not all go at its end into
/// a quota that has only refilled for the pause. No growth while fewer than half the
/// limit are in flight (the limit is not being tested). Other failures count neither
/// way.
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: usize,
    ceiling: usize,
    slow_start: bool,
    /// Where slow start ends after a pause.
    threshold: Option<usize>,
    clean: usize,
    last_decrease: Option<Instant>,
}

impl Aimd {
    pub fn new(initial: usize, ceiling: usize) -> Aimd {
        Aimd {
            limit: initial.clamp(1, ceiling.max(1)),
            ceiling: ceiling.max(1),
            slow_start: true,
            threshold: None,
            clean: 0,
            last_decrease: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Hears one attempt; `in_flight` counts the requests in flight as it ended.
    pub fn hear(&mut self, feedback: &Feedback, in_flight: usize) {
        if self.last_decrease.is_some_and(|at| feedback.sent < at) {
            return;
        }
        if feedback.rate_limited {
            let halved = ((self.limit as f64 * AIMD_BACKOFF) as usize).max(1);
            if feedback.retry_after.is_some() {
                (self.limit, self.threshold, self.slow_start) = (1, Some(halved), true);
            } else {
                (self.limit, self.threshold, self.slow_start) = (halved, None, false);
            }
            self.clean = 0;
            self.last_decrease = Some(feedback.end);
            return;
        }
        if !feedback.answered || in_flight * 2 < self.limit {
            return;
        }
        self.clean += 1;
        if self.clean >= self.limit {
            self.clean = 0;
            let grown = match (self.slow_start, self.threshold) {
                (true, Some(threshold)) if self.limit * 2 >= threshold => {
                    self.slow_start = false;
                    threshold.max(self.limit + 1)
                }
                (true, _) => self.limit * 2,
                (false, _) => self.limit + 1,
            };
            self.limit = grown.min(self.ceiling);
        }
    }
}

/// Fewest responses a [`Vegas`] window averages, whatever the limit.
pub const VEGAS_MIN_SAMPLES: usize = 4;

/// TCP Vegas's rule on request latency, for servers that queue instead of refusing:
/// per window (`limit` answered requests, at least [`VEGAS_MIN_SAMPLES`], sent since the
/// last change), the mean latency against the lowest window mean seen estimates how
/// many requests wait at the server: `queue = limit × (1 − min / mean)`. Below alpha
/// (5 % of the limit, at least 1) the limit grows by one (doubling in slow start, until
/// the first queue seen); above beta (15 %, at least 2) it drops by the excess queue
/// (at most by half); in between it holds. It settles just past the server's knee,
/// where latency starts to grow with concurrency.
#[derive(Debug, Clone)]
pub struct Vegas {
    limit: usize,
    ceiling: usize,
    slow_start: bool,
    min_latency: Option<Duration>,
    since: Option<Instant>,
    sum: Duration,
    samples: usize,
}

impl Vegas {
    pub fn new(initial: usize, ceiling: usize) -> Vegas {
        Vegas {
            limit: initial.clamp(1, ceiling.max(1)),
            ceiling: ceiling.max(1),
            slow_start: true,
            min_latency: None,
            since: None,
            sum: Duration::ZERO,
            samples: 0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Hears one attempt; `in_flight` counts the requests in flight as it ended.
    pub fn hear(&mut self, feedback: &Feedback, in_flight: usize) {
        if !feedback.answered || self.since.is_some_and(|at| feedback.sent < at) {
            return;
        }
        self.sum += feedback.latency();
        self.samples += 1;
        if self.samples < self.limit.max(VEGAS_MIN_SAMPLES) {
            return;
        }
        let mean = self.sum / self.samples as u32;
        (self.sum, self.samples) = (Duration::ZERO, 0);
        let min = *self
            .min_latency
            .insert(self.min_latency.map_or(mean, |m| m.min(mean)));
        let limit = self.limit as f64;
        let queue = limit * (1.0 - min.as_secs_f64() / mean.as_secs_f64().max(1e-9));
        let alpha = (0.05 * limit).max(1.0);
        let beta = (0.15 * limit).max(2.0);
        let next = if queue > beta {
            self.slow_start = false;
            let cut = (queue - alpha).round() as usize;
            self.limit.saturating_sub(cut).max(self.limit / 2).max(1)
        } else if queue < alpha && in_flight * 2 >= self.limit {
            match self.slow_start {
                true => self.limit * 2,
                false => self.limit + 1,
            }
            .min(self.ceiling)
        } else {
            if queue >= alpha {
                self.slow_start = false;
            }
            self.limit
        };
        if next != self.limit {
            self.limit = next;
            self.since = Some(feedback.end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt sent at `sent_ms`, ended `latency_ms` later, after `t0`.
    fn attempt(t0: Instant, sent_ms: u64, latency_ms: u64, status: u16) -> Feedback {
        let sent = t0 + Duration::from_millis(sent_ms);
        Feedback {
            sent,
            end: sent + Duration::from_millis(latency_ms),
            status: Some(status),
            answered: status == 200,
            rate_limited: status == 429,
            retry_after: None,
            output_tokens: 1,
        }
    }

    #[test]
    fn aimd_doubles_per_window_until_a_429_then_halves_once_and_grows_by_one() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(4, 64);
        let mut clock = 0;
        let mut window = |aimd: &mut Aimd, n: usize| {
            for _ in 0..n {
                clock += 1;
                aimd.hear(&attempt(t0, clock, 100, 200), aimd.limit());
            }
        };
        // Slow start: a window of 4 clean responses → 8 → 16.
        window(&mut aimd, 4);
        assert_eq!(aimd.limit(), 8);
        window(&mut aimd, 8);
        assert_eq!(aimd.limit(), 16);
        // A 429 halves it; three more 429s to requests sent before that decrease (the
        // same window) change nothing.
        aimd.hear(&attempt(t0, 1_000, 5, 429), 16);
        assert_eq!(aimd.limit(), 8);
        for sent in [990, 995, 1_004] {
            aimd.hear(&attempt(t0, sent, 1, 429), 16);
        }
        assert_eq!(aimd.limit(), 8);
        // Clean responses to those old requests do not count toward the next window.
        aimd.hear(&attempt(t0, 999, 100, 200), 8);
        // Congestion avoidance: 8 clean responses sent after the decrease → 9.
        for sent in 0..8 {
            aimd.hear(&attempt(t0, 1_100 + sent, 100, 200), 8);
        }
        assert_eq!(aimd.limit(), 9);
        // A 429 to a request sent after the decrease is a new window: 9 → 4.
        aimd.hear(&attempt(t0, 1_200, 1, 429), 9);
        assert_eq!(aimd.limit(), 4);
        // Server errors count neither way; an idle pool (1 of 4 in flight) never grows.
        for sent in 0..8 {
            aimd.hear(&attempt(t0, 1_300 + sent, 100, 500), 4);
            aimd.hear(&attempt(t0, 1_300 + sent, 100, 200), 1);
        }
        assert_eq!(aimd.limit(), 4);
        // Never below 1, never above the ceiling.
        for sent in 0..5 {
            aimd.hear(&attempt(t0, 2_000 + 100 * sent, 1, 429), 4);
        }
        assert_eq!(aimd.limit(), 1);
        // A 429 with a pause: from 16, the threshold is 8 and the limit restarts at 1,
        // doubling per window to 8, then growing by one.
        let mut aimd = Aimd::new(16, 64);
        let paused = Feedback {
            retry_after: Some(Duration::from_secs(1)),
            ..attempt(t0, 0, 5, 429)
        };
        aimd.hear(&paused, 16);
        let mut limits = vec![aimd.limit()];
        for sent in 1..=23 {
            let limit = aimd.limit();
            aimd.hear(&attempt(t0, sent, 100, 200), limit);
            if aimd.limit() != limit {
                limits.push(aimd.limit());
            }
        }
        assert_eq!(limits, [1, 2, 4, 8, 9]);
        let mut aimd = Aimd::new(40, 48);
        for sent in 0..40 {
            aimd.hear(&attempt(t0, sent, 100, 200), 40);
        }
        assert_eq!(aimd.limit(), 48);
    }

    #[test]
    fn vegas_grows_while_latency_is_flat_and_backs_off_to_the_knee_when_it_queues() {
        // A server with 16 slots and 100 ms of service: past 16 in flight, latency is
        // 100 ms × in flight / 16 (Little's law).
        let latency = |in_flight: usize| 100 * (in_flight.max(16) as u64) / 16;
        let t0 = Instant::now();
        let mut vegas = Vegas::new(4, 256);
        let mut clock = 0;
        let mut history = Vec::new();
        for _ in 0..40 {
            let limit = vegas.limit();
            for _ in 0..limit.max(VEGAS_MIN_SAMPLES) {
                clock += 1;
                vegas.hear(&attempt(t0, clock, latency(limit), 200), limit);
            }
            clock += 1_000;
            history.push(vegas.limit());
        }
        // Slow start 4 → 8 → 16 → 32, where a queue of 16 shows: back to 18; then it
        // holds just past the knee.
        assert_eq!(&history[..4], &[8, 16, 32, 18], "{history:?}");
        assert!(
            history[4..].iter().all(|l| (16..=19).contains(l)),
            "{history:?}"
        );
    }
}
