//! A streamed completion paced by its [`CompletionPlan`], whatever the API: the framer
//! renders each step as that API's SSE frames.
//!
//! Steps: start frames at the time to first token, then after each gap one frame per
//! choice still generating (one token each), then the finish frames right after the
//! last token. Deadlines are anchored to the request's arrival, so a sleep that
//! overshoots does not push the rest later. [`Paced`] is the steps without a clock:
//! over HTTP/1.1 the body sleeps until each ([`body`]); over HTTP/2 the connection's task
//! advances all its streams from one deadline heap (`http2`). Either wakes at the
//! wake-up grid's next point (`timer::WakeGrid`), which under load is a little later.
//!
//! Owns the timing of a response's body and what a fault does to it; the frames are the
//! API's [`Framer`], admission and refusals the pipeline's.

use super::MockState;
use super::capacity::Pacing;
use super::faults::Fault;
use super::generator::CompletionPlan;
use super::metrics::Running;
use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// An API's rendering of a stream's steps.
pub(super) trait Framer: Send + 'static {
    /// Frames before the first token (role chunk; message_start …).
    fn start(&mut self, out: &mut Vec<u8>);
    /// The frame carrying one token of choice `choice` (always 0 on APIs without `n`).
    fn token(&mut self, choice: u32, text: &str, out: &mut Vec<u8>);
    /// The frame ending choice `choice` when it stops before the others (OpenAI's `n`:
    /// its `finish_reason` goes out with its last token, as the API sends it); choices
    /// that run to the last step end in [`Framer::finish`].
    fn choice_finished(&mut self, _plan: &CompletionPlan, _choice: u32, _out: &mut Vec<u8>) {}
    /// Frames after the last token (finish, usage, end marker).
    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>);
    /// The API's mid-stream error event.
    fn error_event(&mut self, out: &mut Vec<u8>);
    /// A frame whose JSON is cut off.
    fn malformed(&mut self, out: &mut Vec<u8>);
}

enum Step {
    Start,
    Token {
        sent: u32,
    },
    Finish,
    End,
    /// An injected disconnect: the response breaks off after what was written.
    Broken,
}

/// What is left of a paced response after [`Paced::advance`].
pub(super) enum Progress {
    /// More steps, the next due at this instant.
    Due(Instant),
    /// The last frames are written.
    Ended,
    /// An injected disconnect: write what was rendered, then break the response off.
    Broken,
}

/// A streamed completion's steps, advanced by whoever serves the connection: the body of
/// an HTTP/1.1 response ([`body`]), or the task of an HTTP/2 connection, which advances
/// all its streams from one deadline heap (`http2`).
pub(super) struct Paced {
    state: Arc<MockState>,
    plan: CompletionPlan,
    framer: Box<dyn Framer>,
    step: Step,
    /// The request's arrival until the stream starts, then the next step's deadline.
    next_at: Instant,
    pacing: Pacing,
    /// A mid-stream fault, struck before step `steps / 2`.
    fault: Option<Fault>,
    /// Output tokens to settle with the rate limits when the stream ends.
    settlement: Option<super::pipeline::OutputSettlement>,
    /// The response's place in the serving metrics, and its timings observed.
    running: Running,
}

impl Paced {
    pub fn new(
        state: Arc<MockState>,
        completion: Completion,
        framer: Box<dyn Framer>,
        running: Running,
    ) -> Paced {
        Paced {
            state,
            running,
            next_at: completion.received,
            pacing: completion.pacing,
            plan: completion.plan,
            framer,
            step: Step::Start,
            fault: completion.fault,
            settlement: completion.settlement,
        }
    }

    /// Waits for a decode slot (with a capacity model) and returns when the first
    /// frames fall due: the time to first token after the response's clock starts.
    pub async fn start(&mut self) -> Instant {
        self.next_at = self.pacing.start(self.next_at).await + self.plan.ttft;
        self.next_at
    }

    /// Renders into `out` every step due by `now`: every token already due goes out in
    /// one write (each still its own frame), so a server that has fallen behind catches
    /// up in fewer writes, as real servers batch under load.
    pub fn advance(&mut self, now: Instant, out: &mut Vec<u8>) -> Progress {
        loop {
            self.strike_fault(out);
            self.step = match self.step {
                Step::Start if self.next_at > now => return Progress::Due(self.next_at),
                Step::Start => {
                    self.framer.start(out);
                    self.first_or_finish(0)
                }
                Step::Token { .. } if self.next_at > now => return Progress::Due(self.next_at),
                Step::Token { sent } => {
                    self.state
                        .record_lateness(now.saturating_duration_since(self.next_at));
                    self.emit_step(sent, now, out);
                    self.first_or_finish(sent + 1)
                }
                Step::Finish => {
                    self.framer.finish(&self.plan, out);
                    self.running.ended();
                    Step::End
                }
                Step::End => return Progress::Ended,
                Step::Broken => return Progress::Broken,
            };
        }
    }

    /// Strikes the fault, if there is one, when the next step is token `steps / 2`:
    /// a stall pushes the rest of the stream later, an error event or a cut-off frame
    /// ends it, a disconnect breaks it off.
    fn strike_fault(&mut self, out: &mut Vec<u8>) {
        let Step::Token { sent } = self.step else {
            return;
        };
        if sent != self.plan.steps() / 2 {
            return;
        }
        let Some(fault) = self.fault.take() else {
            return;
        };
        match fault {
            Fault::Disconnect => self.step = Step::Broken,
            Fault::Stall => self.next_at += self.state.config.faults.stall_duration(),
            Fault::ErrorEvent | Fault::Status(_) => {
                self.framer.error_event(out);
                self.step = Step::End;
            }
            Fault::Malformed => {
                self.framer.malformed(out);
                self.step = Step::End;
            }
        }
    }

    /// Writes step `step`'s frames, a token of each choice still generating, and
    /// schedules the next step.
    fn emit_step(&mut self, step: u32, now: Instant, out: &mut Vec<u8>) {
        self.next_at += self.pacing.gap(self.plan.next_gap());
        let mut tokens = 0;
        let steps = self.plan.steps();
        for choice in 0..self.plan.choices.len() {
            let length = self.plan.choices[choice].output_tokens;
            if length > step {
                let word = self.plan.next_word(choice);
                self.framer.token(choice as u32, word, out);
                tokens += 1;
                if length == step + 1 && length < steps {
                    self.framer.choice_finished(&self.plan, choice as u32, out);
                }
            }
        }
        self.running.step(now, tokens);
        self.state
            .counters
            .output_tokens_sent
            .fetch_add(u64::from(tokens), Ordering::Relaxed);
        if let Some(settlement) = &mut self.settlement {
            settlement.generated += tokens;
        }
    }

    fn first_or_finish(&self, sent: u32) -> Step {
        if sent < self.plan.steps() {
            Step::Token { sent }
        } else {
            Step::Finish
        }
    }
}

/// Everything that shapes one admitted completion, streamed or whole.
pub(super) struct Completion {
    pub plan: CompletionPlan,
    /// When the request arrived.
    pub received: Instant,
    pub pacing: Pacing,
    pub fault: Option<Fault>,
    /// Output tokens to settle with the rate limits when the response ends.
    pub settlement: Option<super::pipeline::OutputSettlement>,
}

/// A streamed response's steps, riding on the response as an extension until its
/// connection takes them: an HTTP/2 connection takes them out to pace them with its
/// other streams, leaving the body empty; otherwise the body ([`body`]) takes them at
/// its first poll. (An extension must be `Clone`, hence the shared slot.)
#[derive(Clone)]
pub(super) struct PacedSlot(Arc<std::sync::Mutex<Option<Paced>>>);

impl PacedSlot {
    pub fn take(&self) -> Option<Paced> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// A streamed response body over HTTP/1.1 (and whoever else polls it): one paced
/// response, its own task sleeping until each step.
enum BodyState {
    Unstarted(PacedSlot),
    Running(Box<Paced>, Instant),
    Broken,
}

/// The body of a streamed completion, and the slot its steps wait in.
pub(super) fn body(paced: Paced) -> (Body, PacedSlot) {
    let slot = PacedSlot(Arc::new(std::sync::Mutex::new(Some(paced))));
    let chunks = futures_util::stream::unfold(
        Some(BodyState::Unstarted(slot.clone())),
        |state| async move {
            match state? {
                BodyState::Unstarted(slot) => {
                    let mut paced = Box::new(slot.take()?);
                    let at = paced.start().await;
                    next_chunk(paced, at).await
                }
                BodyState::Running(paced, at) => next_chunk(paced, at).await,
                BodyState::Broken => {
                    // hyper flushes what it holds when the body is pending, not when it
                    // fails: without a pause the response head could be lost with the
                    // connection, and the client would see no response at all.
                    tokio::task::yield_now().await;
                    let broken = std::io::Error::other("injected disconnect");
                    Some((Err(broken), None))
                }
            }
        },
    );
    // A step may render nothing (legacy Completions have no start frame; a stall only
    // moves the deadline); an empty chunk is not worth a write.
    let written =
        chunks.filter(|chunk| std::future::ready(!chunk.as_ref().is_ok_and(Bytes::is_empty)));
    (Body::from_stream(written), slot)
}

type Chunk = (std::io::Result<Bytes>, Option<BodyState>);

async fn next_chunk(mut paced: Box<Paced>, at: Instant) -> Option<Chunk> {
    paced.state.sleep_on_grid(at.into_std()).await;
    let mut out = Vec::with_capacity(256);
    let next = match paced.advance(Instant::now(), &mut out) {
        Progress::Due(at) => Some(BodyState::Running(paced, at)),
        Progress::Ended => None,
        Progress::Broken => Some(BodyState::Broken),
    };
    Some((Ok(Bytes::from(out)), next))
}

/// A whole (non-streamed) completion: waits for a slot and until the last token is
/// due, and returns each choice's text. Faults that replace the response are handled
/// before.
pub(super) async fn whole(state: &MockState, completion: &mut Completion) -> Vec<String> {
    let start = completion.pacing.start(completion.received).await;
    let (texts, done_at) =
        super::generator::whole_texts(&mut completion.plan, &completion.pacing, start);
    state.timer.sleep_until(done_at.into_std()).await;
    let tokens = completion.plan.output_tokens();
    state
        .counters
        .output_tokens_sent
        .fetch_add(u64::from(tokens), Ordering::Relaxed);
    if let Some(settlement) = &mut completion.settlement {
        settlement.generated = tokens;
    }
    texts
}

/// What a fault does to a whole (non-streamed) response: `Some` replaces the response
/// (a dropped connection, a cut-off body); `None` lets it go on (after a stall).
pub(super) async fn whole_fault(
    state: &MockState,
    fault: Option<Fault>,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    match fault? {
        Fault::Disconnect => {
            let failing = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("injected disconnect"))
            });
            Some(Body::from_stream(failing).into_response())
        }
        Fault::Stall => {
            tokio::time::sleep(state.config.faults.stall_duration()).await;
            None
        }
        Fault::Malformed => {
            let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
            Some((headers, "{\"id\": \"cut-off").into_response())
        }
        Fault::ErrorEvent | Fault::Status(_) => None,
    }
}

/// A token's frame rendered once with a placeholder in each hole (what differs between
/// responses, such as an id, or between tokens: the text, a sequence number), so each
/// token costs copies of the fixed bytes and the serialization of the holes' values.
/// Serializing the whole chunk per token was a quarter of the mock's user CPU at 10,000
/// streams. The bytes are exactly those of the full rendering: a string or a number
/// serializes the same wherever it sits.
pub(super) struct FrameTemplate<const HOLES: usize> {
    /// The fixed bytes, in one allocation: writing a token touches one cache line of it
    /// more rather than one per piece (at 10,000 streams a stream's is cold by its next
    /// token).
    bytes: Box<[u8]>,
    /// Where each hole's value goes in `bytes`, in order.
    holes: [usize; HOLES],
}

/// What a rendering carries in a template's hole.
#[derive(Clone, Copy)]
pub(super) enum Hole {
    /// [`Hole::TEXT`], serialized as a JSON string.
    Text,
    /// [`Hole::NUMBER`].
    Number,
}

impl Hole {
    /// Control characters, so no token text or id can be mistaken for it.
    pub const TEXT: &'static str = "\u{1}llmbench-token\u{1}";
    /// No time, index or sequence number reaches it, so none is mistaken for it.
    pub const NUMBER: u64 = u64::MAX;

    fn placeholder(self) -> Vec<u8> {
        match self {
            Hole::Text => serde_json::to_vec(Self::TEXT).expect("a string always serializes"),
            Hole::Number => Self::NUMBER.to_string().into_bytes(),
        }
    }
}

/// A hole's value as a frame is written.
#[derive(Clone, Copy)]
pub(super) enum Fill<'a> {
    /// A string, serialized as JSON.
    Text(&'a str),
    /// A value serialized once beforehand (a response's id, the same in each token).
    Json(&'a [u8]),
    Number(u64),
}

impl Fill<'_> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Fill::Text(text) => crate::wire::write_json_str(out, text),
            Fill::Json(json) => out.extend_from_slice(json),
            Fill::Number(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        }
    }
}

impl<const HOLES: usize> FrameTemplate<HOLES> {
    /// `render` writes the frame with each hole's placeholder; `holes` are those
    /// placeholders in the order the frame carries them.
    pub fn new(render: impl FnOnce(&mut Vec<u8>), holes: [Hole; HOLES]) -> Self {
        let mut bytes = Vec::new();
        render(&mut bytes);
        let mut from = 0;
        let holes = holes.map(|hole| {
            from = cut_hole(&mut bytes, &hole.placeholder(), from);
            from
        });
        // A placeholder left over was written by a value that is not a hole: the holes
        // would have been cut in the wrong places.
        debug_assert!(
            [Hole::Text, Hole::Number].iter().all(|h| {
                let placeholder = h.placeholder();
                !bytes.windows(placeholder.len()).any(|w| w == placeholder)
            }),
            "a rendering carries a placeholder outside its holes"
        );
        FrameTemplate {
            bytes: bytes.into_boxed_slice(),
            holes,
        }
    }

    /// Writes the frame with `values` in its holes, in order.
    #[inline]
    pub fn write(&self, values: [Fill<'_>; HOLES], out: &mut Vec<u8>) {
        let mut from = 0;
        for (&at, value) in self.holes.iter().zip(values) {
            out.extend_from_slice(&self.bytes[from..at]);
            value.write(out);
            from = at;
        }
        out.extend_from_slice(&self.bytes[from..]);
    }
}

/// Removes the first `hole` at or after `from` from a frame rendered with a placeholder
/// there, returning where it was: where the value it stood for is written.
fn cut_hole(frame: &mut Vec<u8>, hole: &[u8], from: usize) -> usize {
    let at = from
        + frame[from..]
            .windows(hole.len())
            .position(|w| w == hole)
            .expect("the frame carries each placeholder, in order");
    frame.drain(at..at + hole.len());
    at
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

/// Token texts a template must write as a full rendering does: plain, empty, escaped,
/// a placeholder's control character, non-ASCII, digits.
#[cfg(test)]
pub(super) const TRICKY_TEXTS: [&str; 6] = [
    " the",
    "",
    "quote \" and \\ and\nnewline",
    "\u{1}",
    "é ✓",
    "42",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn render(id: &str, n: u64, text: &str, out: &mut Vec<u8>) {
        // An array, so the holes keep their order (json!'s maps sort their keys).
        let chunk = serde_json::json!([id, n, {"content": text}, 1]);
        named_frame(out, "delta", &chunk);
    }

    #[test]
    fn a_template_writes_the_bytes_of_a_full_rendering() {
        let one = FrameTemplate::new(|out| render("c-1", 7, Hole::TEXT, out), [Hole::Text]);
        let holes = [Hole::Text, Hole::Number, Hole::Text];
        let three = FrameTemplate::new(
            |out| render(Hole::TEXT, Hole::NUMBER, Hole::TEXT, out),
            holes,
        );
        let id = "chatcmpl-\"ff\"";
        let id_json = serde_json::to_vec(id).unwrap();
        for text in TRICKY_TEXTS {
            for n in [0, 9, 10, 1_700_000_000, u64::MAX] {
                let (mut templated, mut full) = (Vec::new(), Vec::new());
                three.write(
                    [Fill::Json(&id_json), Fill::Number(n), Fill::Text(text)],
                    &mut templated,
                );
                render(id, n, text, &mut full);
                assert_eq!(templated, full, "{}", String::from_utf8_lossy(&full));
            }
            let (mut templated, mut full) = (Vec::new(), Vec::new());
            one.write([Fill::Text(text)], &mut templated);
            render("c-1", 7, text, &mut full);
            assert_eq!(templated, full, "{}", String::from_utf8_lossy(&full));
        }
    }
}
