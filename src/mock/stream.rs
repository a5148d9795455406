//! A streamed completion paced by its [`CompletionPlan`], whatever the API: the framer
//! renders each step as that API's SSE frames.
//!
//! Steps: start frames at the time to first token, one frame per token after its gap,
//! then the finish frames right after the last token. Deadlines are anchored to the
//! request's arrival, so a sleep that overshoots does not push the rest later.

use super::MockState;
use super::generator::CompletionPlan;
use axum::body::{Body, Bytes};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// An API's rendering of a stream's steps.
pub(super) trait Framer: Send + 'static {
    /// Frames before the first token (role chunk; message_start …).
    fn start(&mut self, out: &mut Vec<u8>);
    /// The frame carrying one token.
    fn token(&mut self, text: &str, out: &mut Vec<u8>);
    /// Frames after the last token (finish, usage, end marker).
    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>);
}

enum Step {
    Start,
    Token { sent: u32 },
    Finish,
    End,
}

struct Paced<F> {
    state: Arc<MockState>,
    plan: CompletionPlan,
    framer: F,
    step: Step,
    next_at: Instant,
}

impl<F: Framer> Paced<F> {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::with_capacity(256);
        self.step = match self.step {
            Step::Start => {
                tokio::time::sleep_until(self.next_at).await;
                self.framer.start(&mut out);
                self.first_or_finish(0)
            }
            Step::Token { sent } => {
                tokio::time::sleep_until(self.next_at).await;
                self.next_at += self.plan.next_gap();
                let word = self.plan.next_word();
                self.framer.token(word, &mut out);
                self.state
                    .counters
                    .output_tokens_sent
                    .fetch_add(1, Ordering::Relaxed);
                self.first_or_finish(sent + 1)
            }
            Step::Finish => {
                self.framer.finish(&self.plan, &mut out);
                Step::End
            }
            Step::End => return None,
        };
        Some(Bytes::from(out))
    }

    fn first_or_finish(&self, sent: u32) -> Step {
        if sent < self.plan.output_tokens {
            Step::Token { sent }
        } else {
            Step::Finish
        }
    }
}

/// The response body of a streamed completion that arrived at `received`.
pub(super) fn body<F: Framer>(
    state: Arc<MockState>,
    plan: CompletionPlan,
    framer: F,
    received: Instant,
) -> Body {
    let paced = Paced {
        state,
        next_at: received + plan.ttft,
        plan,
        framer,
        step: Step::Start,
    };
    Body::from_stream(futures_util::stream::unfold(paced, |mut p| async move {
        p.next_chunk()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), p))
    }))
}

/// Appends `data: <json>\n\n`.
pub(super) fn data_frame(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, value).expect("a frame always serializes");
    out.extend_from_slice(b"\n\n");
}

/// Appends `event: <name>\ndata: <json>\n\n`.
pub(super) fn named_frame(out: &mut Vec<u8>, name: &str, value: &impl serde::Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    data_frame(out, value);
}
