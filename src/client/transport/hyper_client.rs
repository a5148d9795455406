//! hyper's client connections, HTTP/1.1 and HTTP/2, plain or over TLS, with a small
//! pool of our own, over tokio or io_uring sockets.
//!
//! HTTP/1.1 carries one request at a time per connection: idle connections wait in a
//! stack, one popped per request and pushed back once its response is read. HTTP/2
//! multiplexes: the pool holds one connection per target, opened by the first request
//! (the others wait for it rather than each opening their own), and every request sends
//! on a clone of its `SendRequest`. On `http://` the protocol is the strategy's choice
//! (`http2`: prior knowledge, h2c); on `https://` the first connection's ALPN tells,
//! and the pool keeps to that protocol from then on.
//!
//! Counts the connections it holds (made and not yet dropped) and the most it held at
//! once, where a connection is made and where it is dropped: nothing scans the pool,
//! and every request does a constant amount of pool work.
//!
//! Written here rather than taken from `hyper_util::client::legacy` because that pool
//! needs `Send` connections, and tokio-uring's sockets are not: the same code has to run
//! on both, so that a hyper-on-tokio strategy is the control for hyper-on-io_uring.

use super::tls::TlsSession;
use super::{Body, Failure, Response, Sockets, Timeouts, before_response, error_chain};
use crate::client::ErrorClass;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep, timeout_at};

/// A request's sending half of one connection.
pub enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// Starts HTTP/1.1 or HTTP/2 over a connected (and, for https, TLS) stream of the
    /// tokio runtime, its connection driven by a task of its own.
    pub async fn start_on_tokio<IO>(io: IO, http2: bool) -> std::io::Result<Sender>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let io = hyper_util::rt::TokioIo::new(io);
        if http2 {
            let (sender, connection) = http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(connection);
            Ok(Sender::Http2(sender))
        } else {
            let (sender, connection) = http1::handshake(io).await.map_err(std::io::Error::other)?;
            tokio::spawn(connection);
            Ok(Sender::Http1(sender))
        }
    }

    /// Whether the connection can take a request now (an HTTP/1.1 connection the
    /// server closed while idle fails here).
    async fn ready(&mut self) -> bool {
        match self {
            Sender::Http1(sender) => sender.ready().await.is_ok(),
            Sender::Http2(sender) => sender.ready().await.is_ok(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_closed(),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }
}

/// How connections are set up once their socket is connected: TLS for https, and which
/// HTTP on a plain one.
pub struct Handshake {
    pub tls: Option<TlsSession>,
    /// HTTP/2 with prior knowledge on a plain connection.
    pub http2: bool,
}

/// Idle HTTP/1.1 connections, each ready for its next request once its last response
/// is read.
type Pool = Arc<Mutex<Vec<Lease>>>;

/// The connections the client holds, and the most it has held at once.
#[derive(Debug, Default)]
struct HeldConnections {
    open: AtomicU64,
    peak: AtomicU64,
}

impl HeldConnections {
    fn count(self: &Arc<Self>, sender: Sender) -> Lease {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
        Lease {
            sender,
            counted: Arc::new(Counted(self.clone())),
            timer: Timer::new(),
        }
    }
}

/// One connection, counted in [`HeldConnections`] until every lease of it is dropped.
struct Counted(Arc<HeldConnections>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection lent to one request: HTTP/1.1's whole, HTTP/2's shared with the other
/// requests on it.
struct Lease {
    sender: Sender,
    counted: Arc<Counted>,
    /// Bounds the waits of the lease's requests: HTTP/1.1's one per connection, reused
    /// by each request on it.
    timer: Timer,
}

impl Lease {
    /// Another lease of an HTTP/2 connection (`None` for HTTP/1.1, which is not shared).
    fn share(&self) -> Option<Lease> {
        match &self.sender {
            Sender::Http1(_) => None,
            Sender::Http2(sender) => Some(Lease {
                sender: Sender::Http2(sender.clone()),
                counted: self.counted.clone(),
                timer: Timer::new(),
            }),
        }
    }
}

/// [`HyperTransport::protocol`]: not known until the first https connection's ALPN.
const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

pub struct HyperTransport {
    /// Resolved once, when the strategy's client is built.
    addrs: Vec<SocketAddr>,
    host: HeaderValue,
    /// The request's target as HTTP/1.1 sends it (the path) and as HTTP/2 does (the
    /// whole URI, for its `:scheme` and `:authority`).
    path: PathAndQuery,
    uri: Uri,
    headers: HeaderMap,
    timeouts: Timeouts,
    sockets: Sockets,
    handshake: Arc<Handshake>,
    /// The protocol connections speak: [`UNKNOWN`], [`HTTP1`] or [`HTTP2`].
    protocol: AtomicU8,
    idle: Pool,
    /// The HTTP/2 connection every request shares, once open.
    shared: Mutex<Option<Lease>>,
    /// Held while an HTTP/2 connection (or, on https, the first connection) is opened.
    opening: tokio::sync::Mutex<()>,
    held: Arc<HeldConnections>,
}

impl HyperTransport {
    pub fn new(
        url: &str,
        sockets: Sockets,
        headers: HeaderMap,
        timeouts: Timeouts,
        (http2, roots): (bool, &[rustls::pki_types::CertificateDer<'static>]),
    ) -> anyhow::Result<HyperTransport> {
        let url = url::Url::parse(url)?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => anyhow::bail!("the hyper client speaks http:// and https://, not {other}://"),
        };
        let host = url.host_str().unwrap_or_default();
        // `socket_addrs` takes IP literals as they are (`[::1]` included) and resolves
        // names once, here.
        let addrs: Vec<SocketAddr> = url
            .socket_addrs(|| None)
            .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let tls = https
            .then(|| TlsSession::new(host, http2, roots))
            .transpose()?;
        let protocol = match (https, http2) {
            (true, _) => UNKNOWN,
            (false, true) => HTTP2,
            (false, false) => HTTP1,
        };
        Ok(HyperTransport {
            addrs,
            uri: Uri::try_from(format!("{}://{authority}{path}", url.scheme()))?,
            host: HeaderValue::try_from(authority)?,
            path: PathAndQuery::try_from(path)?,
            headers,
            timeouts,
            sockets,
            handshake: Arc::new(Handshake { tls, http2 }),
            protocol: AtomicU8::new(protocol),
            idle: Pool::default(),
            shared: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            held: Arc::default(),
        })
    }

    /// The most connections this client has held at once.
    pub fn peak_connections(&self) -> u64 {
        self.held.peak.load(Ordering::Relaxed)
    }

    pub async fn post(&self, body: Vec<u8>) -> Result<Response, Failure> {
        let deadline = Instant::now() + self.timeouts.total;
        let (mut lease, opened) = self.connection(deadline).await?;
        let Lease { sender, timer, .. } = &mut lease;
        let sent = async {
            match sender {
                Sender::Http1(sender) => sender.send_request(self.request(body, false)).await,
                Sender::Http2(sender) => sender.send_request(self.request(body, true)).await,
            }
        };
        // Silence while waiting for the response head counts as idle too, as it does
        // for reqwest's read timeout: a server that stalls before answering fails as
        // `timeout` after `idle_timeout_s`, not after the whole attempt's.
        let response = match timer.within(self.timeouts, deadline, sent).await? {
            Err(e) => return Err(before_response(&e)),
            Ok(response) => response,
        };
        let (parts, incoming) = response.into_parts();
        let body = HyperBody {
            incoming,
            lease: Some((lease, self.idle.clone())),
            deadline,
            timeouts: self.timeouts,
        };
        Ok(Response {
            opened,
            status: parts.status.as_u16(),
            version: parts.version,
            headers: parts.headers,
            body: Body::Hyper(body),
        })
    }

    fn request(&self, body: Vec<u8>, http2: bool) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = http::Method::POST;
        if http2 {
            *request.uri_mut() = self.uri.clone();
            *request.version_mut() = http::Version::HTTP_2;
        } else {
            *request.uri_mut() = Uri::from(self.path.clone());
        }
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        if !http2 {
            headers.insert(HOST, self.host.clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request
    }

    /// A connection for one request: an idle HTTP/1.1 one, the shared HTTP/2 one, or a
    /// new one; with how long the request waited for one to be opened, if it did.
    async fn connection(&self, deadline: Instant) -> Result<(Lease, Option<Duration>), Failure> {
        if self.protocol.load(Ordering::Relaxed) == HTTP1 {
            return self.http1_connection(deadline).await;
        }
        if let Some(lease) = self.live_shared() {
            return Ok((lease, None));
        }
        // One connection is opened at a time: the requests that wait share it.
        let waited = Instant::now();
        let until = self.connect_deadline(deadline);
        let Ok(_opening) = timeout_at(until, self.opening.lock()).await else {
            return Err(self.connect_timed_out(until, deadline));
        };
        if let Some(lease) = self.live_shared() {
            return Ok((lease, Some(waited.elapsed())));
        }
        if self.protocol.load(Ordering::Relaxed) == HTTP1 {
            return self.http1_connection(deadline).await;
        }
        let lease = self.open(deadline).await?;
        let protocol = match lease.share() {
            Some(shared) => {
                *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = Some(shared);
                HTTP2
            }
            None => HTTP1,
        };
        self.protocol.store(protocol, Ordering::Relaxed);
        Ok((lease, Some(waited.elapsed())))
    }

    /// Another lease of the shared HTTP/2 connection, unless there is none or it closed.
    fn live_shared(&self) -> Option<Lease> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared
            .as_ref()
            .filter(|lease| !lease.sender.is_closed())
            .and_then(Lease::share)
    }

    /// An idle HTTP/1.1 connection once it is ready, else a new one.
    async fn http1_connection(
        &self,
        deadline: Instant,
    ) -> Result<(Lease, Option<Duration>), Failure> {
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut pooled) = pooled else { break };
            // A connection the server closed while idle fails here and is dropped.
            if pooled.sender.ready().await {
                return Ok((pooled, None));
            }
        }
        let opening = Instant::now();
        let lease = self.open(deadline).await?;
        Ok((lease, Some(opening.elapsed())))
    }

    /// A new connection, within the connect timeout.
    async fn open(&self, deadline: Instant) -> Result<Lease, Failure> {
        let until = self.connect_deadline(deadline);
        // Boxed: dialling (TCP, TLS, HTTP handshakes) is most of a request's future
        // (~8 KB) but happens once per connection; unboxed, every request's future would
        // hold room for it, and copy it whenever the future is moved.
        match timeout_at(until, Box::pin(self.dial())).await {
            Err(_) => Err(self.connect_timed_out(until, deadline)),
            Ok(Err(e)) => Err((ErrorClass::Connect, error_chain(&e))),
            Ok(Ok(sender)) => Ok(self.held.count(sender)),
        }
    }

    fn connect_deadline(&self, deadline: Instant) -> Instant {
        deadline.min(Instant::now() + self.timeouts.connect)
    }

    fn connect_timed_out(&self, until: Instant, deadline: Instant) -> Failure {
        if until < deadline {
            let message = format!(
                "timed out connecting after {:?} (client.connect_timeout_s)",
                self.timeouts.connect
            );
            (ErrorClass::Timeout, message)
        } else {
            attempt_timed_out(self.timeouts)
        }
    }

    /// Connects to the first address that answers and starts its HTTP connection.
    async fn dial(&self) -> std::io::Result<Sender> {
        let mut last = std::io::Error::other("the host resolved to no address");
        for &addr in &self.addrs {
            match dial(self.sockets, addr, &self.handshake).await {
                Ok(sender) => return Ok(sender),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

async fn dial(
    sockets: Sockets,
    addr: SocketAddr,
    handshake: &Arc<Handshake>,
) -> std::io::Result<Sender> {
    match sockets {
        Sockets::Tokio => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            match &handshake.tls {
                None => Sender::start_on_tokio(stream, handshake.http2).await,
                Some(tls) => {
                    let (stream, http2) = tls.connect(stream).await?;
                    Sender::start_on_tokio(stream, http2).await
                }
            }
        }
        #[cfg(target_os = "linux")]
        Sockets::IoUring => super::uring::dial(addr, handshake.clone()).await,
        #[cfg(not(target_os = "linux"))]
        Sockets::IoUring => Err(std::io::Error::other("io_uring needs Linux")),
    }
}

/// A response body being read; an HTTP/1.1 connection returns to the pool once the body
/// has been read to its end, and is closed if it is dropped before (an HTTP/2 stream
/// dropped early is reset, and its connection stays).
pub struct HyperBody {
    incoming: Incoming,
    lease: Option<(Lease, Pool)>,
    deadline: Instant,
    timeouts: Timeouts,
}

impl HyperBody {
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            // The lease is let go at the body's end.
            let Some((lease, _)) = &mut self.lease else {
                return Ok(None);
            };
            let frame = lease
                .timer
                .within(self.timeouts, self.deadline, self.incoming.frame());
            let frame = match frame.await? {
                None => {
                    self.release();
                    return Ok(None);
                }
                Some(Err(e)) => return Err((ErrorClass::Protocol, error_chain(&e))),
                Some(Ok(frame)) => frame,
            };
            // Trailers and empty frames carry no content.
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                return Ok(Some(data));
            }
        }
    }

    fn release(&mut self) {
        if let Some((lease, pool)) = self.lease.take()
            && matches!(lease.sender, Sender::Http1(_))
        {
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(lease);
        }
    }
}

/// A timer bounding one wait at a time (a response head, a body frame) by the idle and
/// the attempt's timeouts. Kept with its connection rather than made anew for each wait
/// (a new one is an insertion into tokio's timer wheel and a removal, each under the
/// wheel's lock), and moved lazily: a wait whose end is later than the timer's leaves
/// it, and when it rings early the wait moves it to its own end then. A stream's frames
/// come far more often than its idle timeout, so the timer is moved about once per
/// timeout instead of once per frame (`Sleep::reset` was 2 % of a streaming client's
/// CPU). It is armed only when the wait does not end at once (a body frame already
/// read, most often).
struct Timer(Pin<Box<Sleep>>);

impl Timer {
    fn new() -> Timer {
        // Unpolled, a `Sleep` registers nothing: the first wait that is armed does.
        Timer(Box::pin(tokio::time::sleep_until(Instant::now())))
    }

    /// `future`'s output, unless silence lasts `idle_timeout_s` or the attempt outlives
    /// its `deadline` first.
    async fn within<F: Future>(
        &mut self,
        timeouts: Timeouts,
        deadline: Instant,
        future: F,
    ) -> Result<F::Output, Failure> {
        let mut future = pin!(future);
        let mut idle_end = None;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            let idle_end = *idle_end.get_or_insert_with(|| Instant::now() + timeouts.idle);
            let end = idle_end.min(deadline);
            if self.0.deadline() > end {
                self.0.as_mut().reset(end);
            }
            // Rung: the wait is over if its own end has come, else the timer was set for
            // an earlier wait and moves to this one's end.
            while self.0.as_mut().poll(cx).is_ready() {
                if Instant::now() >= end {
                    return Poll::Ready(Err(timed_out(timeouts, idle_end, deadline)));
                }
                self.0.as_mut().reset(end);
            }
            Poll::Pending
        })
        .await
    }
}

/// The timeout that ended a wait which had until `idle_end` or `deadline`, whichever
/// came first.
fn timed_out(timeouts: Timeouts, idle_end: Instant, deadline: Instant) -> Failure {
    if idle_end < deadline {
        let idle = timeouts.idle;
        let message = format!("timed out: no bytes for {idle:?} (client.idle_timeout_s)");
        (ErrorClass::Timeout, message)
    } else {
        attempt_timed_out(timeouts)
    }
}

fn attempt_timed_out(timeouts: Timeouts) -> Failure {
    let total = timeouts.total;
    let message = format!("timed out: the attempt took longer than {total:?} (client.timeout_s)");
    (ErrorClass::Timeout, message)
}
