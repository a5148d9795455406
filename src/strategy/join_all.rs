//! The `join_all` strategy: everything at once, in one task.

use super::{Arrivals, Dispatcher, Strategy};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

/// Everything in flight at once: one future per item, all polled together inside a
/// single task. For a batch this is exactly `futures::future::join_all`; under an
/// arrival schedule each item's future joins the set the moment the item arrives.
///
/// Python: `await asyncio.gather(*(call(i) for i in items))`. Unbounded: a large batch
/// opens as many connections as items and trips provider rate limits. All futures live
/// in one task, so their polling shares one worker thread at a time, as a Python event
/// loop's do.
pub struct JoinAllStrategy;

impl Strategy for JoinAllStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut running = FuturesUnordered::new();
            let mut arriving = true;
            while arriving || !running.is_empty() {
                tokio::select! {
                    arrival = arrivals.next(), if arriving => match arrival {
                        Some(item) => {
                            let dispatcher = dispatcher.clone();
                            running.push(async move { dispatcher.execute(&item).await });
                        }
                        None => arriving = false,
                    },
                    Some(()) = running.next(), if !running.is_empty() => {}
                }
            }
        })
    }
}
