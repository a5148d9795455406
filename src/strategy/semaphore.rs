//! The `semaphore` strategy: a task per item, capped by a semaphore.

use super::{Arrivals, Dispatcher, Strategy};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Every arrived item spawned as its own task at once; at most `limit` hold a permit
/// (and so are in flight), the rest wait on the semaphore in FIFO order.
///
/// Python: `sem = asyncio.Semaphore(limit)`, each call wrapped in `async with sem:`, all
/// started with `asyncio.gather`. Waiting tasks cost memory but no connections.
pub struct SemaphoreStrategy {
    pub limit: usize,
}

impl Strategy for SemaphoreStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        let permits = Arc::new(Semaphore::new(self.limit));
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            while let Some(item) = arrivals.next().await {
                let dispatcher = dispatcher.clone();
                let permits = permits.clone();
                tasks.spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    dispatcher.execute(&item).await;
                });
                // Reap finished tasks as we go, so a long run does not hold them all.
                while tasks.try_join_next().is_some() {}
            }
            tasks.join_all().await;
        })
    }
}
