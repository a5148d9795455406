use super::{Dispatcher, Strategy};
use futures_util::future::BoxFuture;

/// Everything in flight at once: one future per item, all polled together by
/// `futures::future::join_all` inside a single task.
///
/// Python: `await asyncio.gather(*(call(i) for i in items))`. Unbounded: a large batch
/// opens as many connections as items and trips provider rate limits. All futures live
/// in one task, so their polling shares one worker thread at a time, as a Python event
/// loop's do.
pub struct JoinAllStrategy;

impl Strategy for JoinAllStrategy {
    fn run(&self, dispatcher: Dispatcher) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let calls = (0..dispatcher.len()).map(|slot| {
                let dispatcher = dispatcher.clone();
                async move { dispatcher.execute(slot).await }
            });
            futures_util::future::join_all(calls).await;
        })
    }
}
