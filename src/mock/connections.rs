//! The mock's connections: the accept loop, the cap on connections open at once, and
//! who serves each one: hyper for HTTP/1.1, the `http2` module for HTTP/2 with prior
//! knowledge (h2c) on the same port, told apart by the connection's first bytes; the
//! time a request's head may take.
//!
//! Owns accepting and closing connections and their counters (`connections`,
//! `connections_refused`); what a request on a connection gets is the router's. The
//! accept loop is written here because neither library has one that fits: hyper and
//! hyper-util serve a connection once it is accepted and leave accepting to the caller,
//! and `axum::serve`, which has a loop, sets neither the head timeout nor a cap.

use super::MockState;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The first bytes an HTTP/2 client with prior knowledge sends (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long the loop pauses after an accept error that is not the client's (no file
/// descriptor left, say): the listener stays ready, so without a pause the loop would
/// spin, and connections closing meanwhile free what it lacks. axum::serve pauses 1 s;
/// a tenth of that keeps a brief shortage from adding a second to the waiting clients'
/// latency.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` until dropped, each served by `app` on a task of
/// its own while it holds one of the `max_connections` slots. A connection accepted
/// when none is free is closed at once (the client reads end-of-file before any
/// response) and counted as refused. One that has not sent a request's whole head within
/// `header_timeout_s` (its first, counted from the accept, or the next on a kept-alive
/// connection) is closed without an answer: there is no request yet to answer, as
/// nginx's `client_header_timeout` also only closes.
pub(super) async fn accept(listener: TcpListener, app: axum::Router, state: Arc<MockState>) {
    let config = &state.config;
    let slots = Arc::new(Semaphore::new(
        config.max_connections.get().min(Semaphore::MAX_PERMITS),
    ));
    let header_timeout = Duration::from_secs_f64(config.header_timeout_s.0);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let counters = &state.counters;
    let mut spare = SpareDescriptor::reserve();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) if is_out_of_descriptors(&e) && spare.refuse_one(&listener).await => {
                counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(_) => {
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Tokens are small writes: without this, Nagle's algorithm holds each one until
        // the client's delayed ACK (tens of milliseconds) and every gap measures that.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (http1, app, state) = (http1.clone(), app.clone(), state.clone());
        tokio::spawn(async move {
            // A connection's errors (a reset, a head timeout) end only that connection.
            // Its first head (or HTTP/2 handshake) is due `header_timeout` after the
            // accept, the wait for its first bytes included.
            let head_due = tokio::time::Instant::now() + header_timeout;
            match speaks_http2(&stream, head_due).await {
                Some(true) => {
                    super::http2::serve(stream, app, state, head_due, header_timeout).await;
                }
                Some(false) => serve_http1(&http1, stream, app, head_due).await,
                None => {}
            }
            drop(slot);
        });
    }
}

/// Serves an HTTP/1.1 connection with hyper, closing it unanswered if its first
/// request's head is not whole by `head_due`. hyper's own head timeout (which also
/// bounds the idle time between requests) runs from when it starts reading, after the
/// protocol sniff, so the first head's deadline from the accept is kept here, and
/// later heads and idle gaps keep hyper's whole timeout.
async fn serve_http1(
    http1: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    app: axum::Router,
    head_due: tokio::time::Instant,
) {
    use tower::ServiceExt;
    let first_head = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = first_head.clone();
    let app = app.map_request(move |request: http::Request<hyper::body::Incoming>| {
        seen.store(true, Ordering::Relaxed);
        request
    });
    let connection = http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = &mut connection => return,
        () = tokio::time::sleep_until(head_due) => {}
    }
    if first_head.load(Ordering::Relaxed) {
        let _ = connection.await;
    }
}

/// Whether the connection opens with the HTTP/2 preface, from its first bytes (peeked,
/// so whoever serves it reads them again); `None` if it closes or stays silent until
/// `due`. Written here because hyper-util's own detection (`server::conn::auto`)
/// hands an HTTP/2 connection only to hyper's HTTP/2 server.
async fn speaks_http2(stream: &TcpStream, due: tokio::time::Instant) -> Option<bool> {
    let sniff = async {
        let mut first = [0u8; HTTP2_PREFACE.len()];
        let mut pause = Duration::from_millis(1);
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            if n == 0 {
                return None;
            }
            if n == first.len() || first[..n] != HTTP2_PREFACE[..n] {
                return Some(first == HTTP2_PREFACE);
            }
            // Part of the preface: peeking again at once would return the same bytes,
            // so give the rest a moment to arrive (clients send it in one segment), a
            // longer one each time, so a client that stops half-way costs little.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    };
    tokio::time::timeout_at(due, sniff).await.ok().flatten()
}

/// A file descriptor held in reserve, as nginx and libev do: when the process has none
/// left, a connection waiting to be accepted would wait until its client's timeout (five
/// minutes by default) while the listener looks idle. Giving the reserve back lets the
/// loop accept that connection and close it at once, so the client fails now, as a
/// connection error, instead of hanging.
struct SpareDescriptor(Option<std::fs::File>);

impl SpareDescriptor {
    fn reserve() -> SpareDescriptor {
        SpareDescriptor(std::fs::File::open(NULL_DEVICE).ok())
    }

    /// Accepts one waiting connection with the reserve and closes it; false if there is
    /// no reserve (or no connection) to do it with.
    async fn refuse_one(&mut self, listener: &TcpListener) -> bool {
        if self.0.take().is_none() {
            return false;
        }
        let refused = listener.accept().await.is_ok();
        *self = SpareDescriptor::reserve();
        refused
    }
}

#[cfg(unix)]
const NULL_DEVICE: &str = "/dev/null";
#[cfg(not(unix))]
const NULL_DEVICE: &str = "NUL";

/// The process (or the system) has no file descriptor left.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Errors of one connection that went away before it was accepted, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
