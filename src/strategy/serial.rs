use super::{Dispatcher, Strategy};
use futures_util::future::BoxFuture;

/// One request after another: each is awaited before the next is sent.
///
/// Python: `for item in items: await call(item)` (sequential await). The baseline every
/// concurrent strategy is measured against.
pub struct SerialStrategy;

impl Strategy for SerialStrategy {
    fn run(&self, dispatcher: Dispatcher) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            for slot in 0..dispatcher.len() {
                if dispatcher.is_cancelled() {
                    break;
                }
                dispatcher.execute(slot).await;
            }
        })
    }
}
