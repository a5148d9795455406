//! The `joinset` strategy: a JoinSet pool refilled as tasks finish.

use super::{Arrivals, Dispatcher, Strategy};
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

/// A `tokio::task::JoinSet` holding at most `limit` tasks: each arrived item is spawned
/// when a slot is free, otherwise it waits until a task completes.
///
/// Python: a worker pool pulling from the queue under an `asyncio.TaskGroup`, starting
/// a new task as one finishes. Unlike the semaphore strategy, waiting items are not
/// tasks yet, so memory stays proportional to `limit`, not to the backlog.
pub struct JoinSetStrategy {
    pub limit: usize,
}

impl Strategy for JoinSetStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        let limit = self.limit;
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            while let Some(item) = arrivals.next().await {
                while tasks.len() >= limit {
                    tasks.join_next().await;
                }
                let dispatcher = dispatcher.clone();
                tasks.spawn(async move { dispatcher.execute(&item).await });
            }
            tasks.join_all().await;
        })
    }
}
