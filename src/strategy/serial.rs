//! The `serial` strategy: one request after another.

use super::{Arrivals, Dispatcher, Strategy};
use futures_util::future::BoxFuture;

/// One request after another: each is awaited before the next arrived item is sent.
///
/// Python: `for item in items: await call(item)` (sequential await). The baseline every
/// concurrent strategy is measured against. Under an arrival schedule, items that
/// arrive while a request is in flight queue up, and their wait counts in the corrected
/// latency.
pub struct SerialStrategy;

impl Strategy for SerialStrategy {
    fn run(&self, dispatcher: Dispatcher, mut arrivals: Arrivals) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            while let Some(item) = arrivals.next().await {
                dispatcher.execute(&item).await;
            }
        })
    }
}
