use super::{Dispatcher, Strategy};
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

/// A `tokio::task::JoinSet` holding at most `limit` tasks: it is filled to `limit`, and
/// each time a task completes the next item is spawned in its place.
///
/// Python: a worker pool pulling from the list under an `asyncio.TaskGroup`, starting a
/// new task as one finishes. Unlike the semaphore strategy, waiting items are not tasks
/// yet, so memory stays proportional to `limit`, not to the batch.
pub struct JoinSetStrategy {
    pub limit: usize,
}

impl Strategy for JoinSetStrategy {
    fn run(&self, dispatcher: Dispatcher) -> BoxFuture<'static, ()> {
        let limit = self.limit;
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            let mut next = 0;
            loop {
                while tasks.len() < limit && next < dispatcher.len() && !dispatcher.is_cancelled() {
                    let dispatcher = dispatcher.clone();
                    let slot = next;
                    tasks.spawn(async move { dispatcher.execute(slot).await });
                    next += 1;
                }
                if tasks.join_next().await.is_none() {
                    break;
                }
            }
        })
    }
}
