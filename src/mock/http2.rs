//! HTTP/2 connections (h2c with prior knowledge), served with the `h2` crate directly:
//! one task per connection paces every streamed response on it from one deadline heap.
//!
//! Why not hyper's HTTP/2 server: it gives every stream a task of its own, which sleeps
//! until each token, polls the response body and hands the chunk to h2. At 10,000
//! streams of a token every 20 ms that is half a million task wake-ups, timer entries
//! and body polls a second, and hyper's stream task and h2's stream store were about a
//! sixth of the mock's CPU at 5,000 streams. Here the connection's task wakes once for
//! the earliest deadline, renders the frames of every stream then due, hands them to h2
//! and lets it write them together: one timer entry, one wake-up and one write per
//! batch, however many streams are in it (`write_gate` holds what h2 writes between
//! batches, and rendering stops while the client does not read what was sent).
//!
//! A request still goes through the router on a task of its own until its response
//! head, so a request waiting for its body, a decode slot or a rate limit does not hold
//! the connection up. A streamed completion's steps then move to the connection's task
//! ([`PacedSlot`]); any other response (whole completions, errors, `/metrics`) is
//! forwarded by the request's task.
//!
//! Owns the HTTP/2 protocol side of a connection; what a request gets is the router's,
//! when each frame is due the stream's [`Paced`].

use super::MockState;
use super::stream::{Paced, PacedSlot, Progress};
use super::write_gate::{GatedSocket, WriteGate};
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http_body_util::BodyExt;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::ServiceExt;

/// Streams one connection may carry at once: far above hyper's default of 200, so that a
/// client can put thousands of streams on one connection (as providers allow) and the
/// mock's writes carry many streams' tokens each.
const MAX_STREAMS_PER_CONNECTION: u32 = 1_000_000;

/// Flow-control windows, per stream and per connection: hyper's server defaults (1 MiB),
/// so a prompt of up to that size arrives without waiting for a window update.
const WINDOW: u32 = 1024 * 1024;

/// The largest header list a request may send: hyper's server default.
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// The longest a stream waits without being looked at: a stalled stream (the `stall`
/// fault, ten minutes by default) is checked this often for a reset by its client.
const CHECK_IN: Duration = Duration::from_secs(1);

/// The most response bytes a connection's streams may have waiting in h2 for the
/// client's flow-control windows before the connection renders nothing more: h2
/// buffers whatever it is given, so a client that never opens its windows would
/// otherwise have every response buffered whole. Far above what a pass renders (10,000
/// streams' tokens are about 2 MB).
const MOST_UNSENT: u64 = 16 * 1024 * 1024;

/// Serves one HTTP/2 connection until it closes. The client has until `handshake_due`
/// to send its preface and settings, and a connection without a stream open for
/// `idle_timeout` is closed (a GOAWAY), as hyper closes an HTTP/1.1 connection idle
/// between requests.
///
/// What the connection writes goes out on its passes at the wake-up grid's points
/// ([`WakeGrid`](super::timer::WakeGrid); every write at once when there is no grid),
/// through its [`WriteGate`].
pub(super) async fn serve(
    io: TcpStream,
    app: axum::Router,
    state: Arc<MockState>,
    handshake_due: tokio::time::Instant,
    idle_timeout: Duration,
) {
    let gate = WriteGate::new();
    let io = GatedSocket::new(io, gate.clone());
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .handshake::<_, Bytes>(io);
    let Ok(Ok(mut connection)) = tokio::time::timeout_at(handshake_due, handshake).await else {
        return;
    };
    let (handoff, handoffs) = mpsc::unbounded_channel();
    let mut streams = Streams::new(state, handoffs);
    let mut idle = IdleTimeout::new(idle_timeout);
    std::future::poll_fn(|cx| {
        // The streams first, so what they render goes out when the connection is polled
        // next, in this same pass. A client that does not read what was sent gets
        // nothing new rendered: h2 would buffer every frame, without bound, until the
        // socket takes them.
        let blocked = streams.waits_for_client(&gate);
        let at_grid_point = streams.poll(cx, blocked);
        // What a blocked socket holds goes out as soon as the client reads.
        gate.set_open(blocked || at_grid_point || streams.no_grid());
        loop {
            match connection.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    tokio::spawn(answer(request, respond, app.clone(), handoff.clone()));
                }
                // Closed, or broken: its streams end with it.
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        // Response heads sent between grid points, say, wait for the next.
        if gate.take_holding() {
            streams.hold(cx);
        }
        // The client read, or opened its windows (h2 sent above what it held): the
        // streams left waiting go on.
        if blocked && !streams.waits_for_client(&gate) {
            cx.waker().wake_by_ref();
        }
        let idle_now = !connection.has_streams() && streams.live.is_empty();
        if idle.poll_expired(idle_now, cx) {
            connection.graceful_shutdown();
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
}

/// How long a connection has had no stream open, against its limit.
struct IdleTimeout {
    limit: Duration,
    /// Armed while the connection is idle.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl IdleTimeout {
    fn new(limit: Duration) -> IdleTimeout {
        IdleTimeout {
            limit,
            timer: None,
            expired: false,
        }
    }

    /// Whether the connection, `idle` now, has just been idle for the whole limit: true
    /// once. A stream opened meanwhile starts the count again.
    fn poll_expired(&mut self, idle: bool, cx: &mut Context<'_>) -> bool {
        if !idle || self.expired {
            self.timer = None;
            return false;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        self.expired = timer.as_mut().poll(cx).is_ready();
        self.expired
    }
}

/// A streamed response handed to its connection's task: its steps and its stream.
struct PacedHandoff {
    paced: Paced,
    send: SendStream<Bytes>,
    /// When its first frames are due.
    first: Instant,
}

/// Answers one request through the router: sends the response head, then either hands a
/// streamed completion's steps to the connection or forwards the body itself.
async fn answer(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    app: axum::Router,
    handoff: mpsc::UnboundedSender<PacedHandoff>,
) {
    let request = request.map(|body| axum::body::Body::new(RequestBody(body)));
    // A client that resets the stream while the router waits (for a slot, a rate limit,
    // a whole completion's last token) ends the wait, and with it what it holds.
    let reset = std::future::poll_fn(|cx| respond.poll_reset(cx));
    let response = tokio::select! {
        Ok(response) = app.oneshot(request) => response,
        _ = reset => return,
    };
    let (mut head, body) = response.into_parts();
    strip_connection_headers(&mut head.headers);
    // Every provider's response carries a Date, as hyper adds over HTTP/1.1.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    if let Ok(date) = http::HeaderValue::from_str(&date) {
        head.headers.entry(http::header::DATE).or_insert(date);
    }
    let paced = head.extensions.remove::<PacedSlot>().and_then(|s| s.take());
    let end = paced.is_none() && http_body::Body::is_end_stream(&body);
    let Ok(mut send) = respond.send_response(http::Response::from_parts(head, ()), end) else {
        return;
    };
    match paced {
        Some(mut paced) => {
            let reset = std::future::poll_fn(|cx| send.poll_reset(cx));
            let first = tokio::select! {
                first = paced.start() => first,
                _ = reset => return,
            };
            // The connection is gone if nobody receives; so is the stream.
            let _ = handoff.send(PacedHandoff { paced, send, first });
        }
        None if !end => forward(body, send).await,
        None => {}
    }
}

/// Writes a whole response body to its stream; a body that fails (an injected
/// disconnect) resets the stream, as hyper does.
async fn forward(mut body: axum::body::Body, mut send: SendStream<Bytes>) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // As for a paced stream: let the connection write the head before the reset
            // drops what h2 still holds.
            tokio::task::yield_now().await;
            send.send_reset(Reason::INTERNAL_ERROR);
            return;
        };
        if let Ok(data) = frame.into_data()
            && send.send_data(data, false).is_err()
        {
            return;
        }
    }
    let _ = send.send_data(Bytes::new(), true);
}

/// Headers that name or manage an HTTP/1.1 connection, which HTTP/2 forbids (RFC 9113
/// §8.2.2); a handler may set `connection: close` for HTTP/1.1's sake.
fn strip_connection_headers(headers: &mut http::HeaderMap) {
    use http::header::{CONNECTION, TE, TRANSFER_ENCODING, UPGRADE};
    for name in [CONNECTION, TE, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// A request body read from its HTTP/2 stream, giving the window back as it is read.
struct RequestBody(RecvStream);

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, h2::Error>>> {
        let recv = &mut self.get_mut().0;
        match ready!(recv.poll_data(cx)) {
            Some(Ok(data)) => {
                let _ = recv.flow_control().release_capacity(data.len());
                Poll::Ready(Some(Ok(http_body::Frame::data(data))))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => match ready!(recv.poll_trailers(cx)) {
                Ok(Some(trailers)) => Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers)))),
                Ok(None) => Poll::Ready(None),
                Err(e) => Poll::Ready(Some(Err(e))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

/// A stream a pass rendered: its key, where its frames are in the pass's buffer, and
/// what is left of it.
type RenderedStream = (usize, std::ops::Range<usize>, Progress);

type Alarm = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A connection's streamed responses, ordered by when each next falls due.
struct Streams {
    state: Arc<MockState>,
    handoffs: mpsc::UnboundedReceiver<PacedHandoff>,
    live: Slab<(Paced, SendStream<Bytes>)>,
    /// Each live stream's next deadline (or check-in): one entry per stream, except
    /// those `breaking`, which have none.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Streams broken off by an injected disconnect, reset on the next pass (the task
    /// wakes itself for it): a reset drops the frames h2 still holds, and the response
    /// head must reach the client first (the connection writes it when polled, after
    /// this pass).
    breaking: Vec<usize>,
    /// The pacing timer's wait for the earliest deadline, and that deadline.
    alarm: Option<(Instant, Alarm)>,
    /// Since when the connection's socket holds bytes back (see `write_gate`): the next
    /// grid point after it is a pass that sends, whether or not a stream is due.
    held: Option<Instant>,
    /// The streams a pass rendered, with where their frames are in its buffer (kept for
    /// its allocation).
    rendered: Vec<RenderedStream>,
    /// How many bytes the last pass rendered: the next one's first guess.
    last_pass_bytes: usize,
    /// Response bytes handed to h2 so far, against what the socket has taken
    /// (`WriteGate::data_written`).
    handed: u64,
}

impl Streams {
    fn new(state: Arc<MockState>, handoffs: mpsc::UnboundedReceiver<PacedHandoff>) -> Streams {
        Streams {
            state,
            handoffs,
            live: Slab::new(),
            due: BinaryHeap::new(),
            breaking: Vec::new(),
            alarm: None,
            held: None,
            rendered: Vec::new(),
            last_pass_bytes: 0,
            handed: 0,
        }
    }

    /// Takes the streams handed over; at the grid point after the earliest deadline,
    /// advances every stream due and returns true: this pass sends. Otherwise the timer
    /// is set for that grid point. Between grid points nothing is advanced, however
    /// often h2 or new requests wake the connection, so that each pass that sends
    /// carries a grid interval's tokens. While the client holds the connection up
    /// (`blocked`: see [`Streams::waits_for_client`]) nothing is advanced either (what
    /// the client sends, or the socket's readiness, wakes the task): the streams catch
    /// up once it reads, their lateness counted.
    fn poll(&mut self, cx: &mut Context<'_>, blocked: bool) -> bool {
        for key in self.breaking.drain(..) {
            let (_, mut send) = self.live.remove(key);
            send.send_reset(Reason::INTERNAL_ERROR);
        }
        while let Poll::Ready(Some(h)) = self.handoffs.poll_recv(cx) {
            let key = self.live.insert((h.paced, h.send));
            self.due.push(Reverse((h.first, key)));
        }
        let at_grid_point = !blocked
            && self
                .earliest()
                .is_some_and(|at| self.wait_for(at, cx).is_ready());
        if at_grid_point {
            self.held = None;
            // Once per pass: what this pass rendered is written (by the connection, after
            // this) before anything that fell due meanwhile, however far behind it is.
            self.advance_due(Instant::now());
            self.rearm(cx);
        }
        if !self.breaking.is_empty() {
            cx.waker().wake_by_ref();
        }
        at_grid_point
    }

    /// Sets the timer for the earliest deadline's grid point, or wakes the task at once
    /// when that has passed already.
    fn rearm(&mut self, cx: &mut Context<'_>) {
        match self.earliest() {
            Some(next) if self.wait_for(next, cx).is_pending() => {}
            Some(_) => cx.waker().wake_by_ref(),
            None => self.alarm = None,
        }
    }

    /// The connection's socket holds bytes back: the task passes again at the next grid
    /// point to send them.
    fn hold(&mut self, cx: &mut Context<'_>) {
        self.held.get_or_insert_with(Instant::now);
        self.rearm(cx);
    }

    /// Whether the mock sends too little for a grid: every write then goes out at once.
    fn no_grid(&self) -> bool {
        self.state.grid_spacing().is_zero()
    }

    /// Whether the client holds the connection up: its socket is full, or more than
    /// [`MOST_UNSENT`] of what the streams handed h2 waits for its flow-control windows.
    fn waits_for_client(&self, gate: &WriteGate) -> bool {
        gate.is_blocked() || self.handed.saturating_sub(gate.data_written()) > MOST_UNSENT
    }

    fn earliest(&self) -> Option<Instant> {
        let due = self.due.peek().map(|&Reverse((at, _))| at);
        match (due, self.held) {
            (Some(due), Some(held)) => Some(due.min(held)),
            (due, held) => due.or(held),
        }
    }

    /// Waits on the pacing timer until `at` (put off to the wake-up grid), re-armed
    /// when the earliest deadline moved.
    fn wait_for(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if self.alarm.as_ref().is_none_or(|(armed, _)| *armed != at) {
            let state = self.state.clone();
            let alarm = Box::pin(async move { state.sleep_on_grid(at.into_std()).await });
            self.alarm = Some((at, alarm));
        }
        let (_, alarm) = self.alarm.as_mut().expect("armed above");
        ready!(alarm.as_mut().poll(cx));
        self.alarm = None;
        Poll::Ready(())
    }

    /// Advances every stream due by `now`: renders them all into one buffer, then hands
    /// each its slice of it (no copy).
    fn advance_due(&mut self, now: Instant) {
        let mut rendered = std::mem::take(&mut self.rendered);
        let out = self.render_due(now, &mut rendered);
        self.hand_over(Bytes::from(out), &mut rendered, now);
        self.rendered = rendered;
    }

    /// Renders every stream due by `now` into one buffer, noting in `rendered` where
    /// each one's frames are. A stream whose next step is further away than
    /// [`CHECK_IN`] (a stall) is looked at sooner, to see whether its client reset it.
    fn render_due(&mut self, now: Instant, rendered: &mut Vec<RenderedStream>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.last_pass_bytes.max(4096));
        while let Some(&Reverse((at, key))) = self.due.peek()
            && at <= now
        {
            self.due.pop();
            let (paced, send) = &mut self.live[key];
            let start = out.len();
            let progress = paced.advance(now, &mut out);
            if out.len() == start && matches!(progress, Progress::Due(_)) {
                // A check-in (or a stall's start): nothing to send, so ask h2 whether the
                // client has reset the stream; it frees its slot and settles if so.
                let reset = send.poll_reset(&mut Context::from_waker(std::task::Waker::noop()));
                if reset.is_ready() {
                    drop(self.live.remove(key));
                    continue;
                }
            }
            rendered.push((key, start..out.len(), progress));
        }
        self.last_pass_bytes = out.len();
        out
    }

    /// Hands each stream rendered its slice of `out`, and schedules what is left of it.
    fn hand_over(&mut self, out: Bytes, rendered: &mut Vec<RenderedStream>, now: Instant) {
        for (key, range, progress) in rendered.drain(..) {
            let (_, send) = &mut self.live[key];
            let end = matches!(progress, Progress::Ended);
            let len = range.len() as u64;
            let sent = (range.is_empty() && !end) || send.send_data(out.slice(range), end).is_ok();
            if sent {
                self.handed += len;
            }
            match progress {
                Progress::Due(next) if sent => {
                    self.due.push(Reverse((next.min(now + CHECK_IN), key)))
                }
                Progress::Broken if sent => self.breaking.push(key),
                // Ended, or reset by its client.
                _ => drop(self.live.remove(key)),
            }
        }
    }
}
