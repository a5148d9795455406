//! The `rate` strategy: paced to a provider's per-minute quota, charged before sending.

use super::{Arrivals, Dispatcher, Feedback, Gate, Strategy};
use crate::quota::{Dimension, Quota};
use crate::recorder::timeline::LimitUnit;
use crate::workload::WorkItem;
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A client-side limiter of requests and tokens per minute: token buckets of
/// `headroom` times the provider's quota (the same arithmetic as the mock's, in
/// [`crate::quota`]), full at the start, each request charged its estimated cost before
/// it is sent (as the provider charges it at admission: one request; max(`max_tokens`,
/// prompt) tokens; the prompt as input tokens; `max_tokens` as output tokens, the unused
/// part given back when the response ends). Retries are charged too. With `limit`, at
/// most that many requests are in flight as well.
///
/// Python: the OpenAI cookbook's `api_request_parallel_processor.py`, which keeps
/// request and token "capacity" refilled per second and pre-charges each request's
/// estimated tokens. A pacer, not a cap: it sends at the quota's rate whatever the
/// latency, so a quota the client honours draws no 429.
pub struct RateStrategy {
    /// The provider's per-minute limits, by dimension.
    pub quota: Vec<(Dimension, u64)>,
    /// The share of each limit used (0 to 1).
    pub headroom: f64,
    /// Most requests in flight, if capped.
    pub limit: Option<usize>,
}

impl Strategy for RateStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        let pacer = Arc::new(Pacer {
            queue: tokio::sync::Mutex::new(()),
            quota: Mutex::new(Quota::new(&self.quota, self.headroom, Instant::now())),
            dispatcher: dispatcher.clone(),
        });
        let permits = self.limit.map(|limit| Arc::new(Semaphore::new(limit)));
        // The series holds the requests per second the quota admits for the workload's
        // mean request: a rate of the limiter, not of each request's size.
        let (prompt, max_output) = mean_request(&dispatcher);
        let rate = pacer.quota().rate(prompt, max_output);
        dispatcher.record_limit(LimitUnit::PerSecond, rate);
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            while let Some(item) = arrivals.next().await {
                // A slot first, then the quota: a charge is never spent waiting for one.
                let permit = match &permits {
                    Some(permits) => match permits.clone().acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => break,
                    },
                    None => None,
                };
                pacer.admit(&item).await;
                let (dispatcher, pacer) = (dispatcher.clone(), pacer.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    dispatcher.execute_gated(&item, &*pacer).await;
                });
                while tasks.try_join_next().is_some() {}
            }
            tasks.join_all().await;
        })
    }
}

/// The mean prompt and completion cap of the strategy's work items.
fn mean_request(dispatcher: &Dispatcher) -> (u32, u32) {
    let n = dispatcher.len().max(1) as u64;
    let (prompt, output) = dispatcher
        .items()
        .iter()
        .fold((0u64, 0u64), |(p, o), item| {
            (
                p + u64::from(item.prompt_tokens),
                o + u64::from(item.max_tokens),
            )
        });
    let mean = |sum: u64| u32::try_from(sum / n).unwrap_or(u32::MAX);
    (mean(prompt), mean(output))
}

/// The limiter: one FIFO queue (an async mutex is fair) in front of the buckets, so
/// first attempts and retries are admitted in the order they asked.
struct Pacer {
    queue: tokio::sync::Mutex<()>,
    quota: Mutex<Quota>,
    dispatcher: Dispatcher,
}

impl Pacer {
    /// Waits until the quota covers `item`, then charges it (or returns at once when
    /// the run is interrupted: the dispatcher then sends nothing).
    async fn admit(&self, item: &WorkItem) {
        let (prompt, max_output) = (item.prompt_tokens, item.max_tokens);
        let _turn = tokio::select! {
            turn = self.queue.lock() => turn,
            _ = self.dispatcher.cancelled() => return,
        };
        loop {
            let now = Instant::now();
            let wait = {
                let mut quota = self.quota();
                let wait = quota.wait(prompt, max_output, now);
                if wait.is_none() {
                    quota.take(prompt, max_output, now);
                }
                wait
            };
            let Some(wait) = wait else {
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.dispatcher.cancelled() => return,
            }
        }
    }
}

impl Pacer {
    fn quota(&self) -> std::sync::MutexGuard<'_, Quota> {
        self.quota.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Gate for Pacer {
    fn before_retry<'a>(&'a self, item: &'a WorkItem) -> BoxFuture<'a, ()> {
        Box::pin(self.admit(item))
    }

    fn after_attempt(&self, item: &WorkItem, feedback: &Feedback) {
        // Output tokens reserved and not generated go back, as the provider refunds
        // them when the response ends (a little later here: on the safe side).
        let unused = item.max_tokens.saturating_sub(feedback.output_tokens);
        if unused > 0 {
            self.quota().refund_output(unused, Instant::now());
        }
    }
}
