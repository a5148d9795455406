//! hyper's HTTP/1.1 client connections with a small pool of our own, over tokio or
//! io_uring sockets.
//!
//! Counts the connections it holds (made and not yet dropped) and the most it held at
//! once, where a connection is made and where it is dropped: nothing scans the pool.
//!
//! Written here rather than taken from `hyper_util::client::legacy` because that pool
//! needs `Send` connections, and tokio-uring's sockets are not: the same code has to run
//! on both, so that a hyper-on-tokio strategy is the control for hyper-on-io_uring.

use super::{Body, Failure, Response, Sockets, Timeouts, before_response, error_chain};
use crate::client::ErrorClass;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::{Instant, timeout_at};

pub type Sender = SendRequest<Full<Bytes>>;

/// Idle connections, each ready for its next request once its last response is read.
type Pool = Arc<Mutex<Vec<CountedSender>>>;

/// The connections the client holds, and the most it has held at once.
#[derive(Debug, Default)]
struct HeldConnections {
    open: AtomicU64,
    peak: AtomicU64,
}

impl HeldConnections {
    fn count(self: &Arc<Self>, sender: Sender) -> CountedSender {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
        CountedSender {
            sender,
            held: self.clone(),
        }
    }
}

/// A connection, counted in [`HeldConnections`] until it is dropped.
struct CountedSender {
    sender: Sender,
    held: Arc<HeldConnections>,
}

impl Drop for CountedSender {
    fn drop(&mut self) {
        self.held.open.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct HyperTransport {
    /// Resolved once, when the strategy's client is built.
    addrs: Vec<SocketAddr>,
    host: HeaderValue,
    path: PathAndQuery,
    headers: HeaderMap,
    timeouts: Timeouts,
    sockets: Sockets,
    pool: Pool,
    held: Arc<HeldConnections>,
}

impl HyperTransport {
    pub fn new(
        url: &str,
        sockets: Sockets,
        headers: HeaderMap,
        timeouts: Timeouts,
    ) -> anyhow::Result<HyperTransport> {
        let url = url::Url::parse(url)?;
        anyhow::ensure!(
            url.scheme() == "http",
            "the hyper client speaks plain http:// only, and {url} is not; use client = \"reqwest\" for https"
        );
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?
            .collect();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        Ok(HyperTransport {
            addrs,
            host: HeaderValue::try_from(authority)?,
            path: PathAndQuery::try_from(path)?,
            headers,
            timeouts,
            sockets,
            pool: Pool::default(),
            held: Arc::default(),
        })
    }

    /// The most connections this client has held at once.
    pub fn peak_connections(&self) -> u64 {
        self.held.peak.load(Ordering::Relaxed)
    }

    pub async fn post(&self, body: Vec<u8>) -> Result<Response, Failure> {
        let deadline = Instant::now() + self.timeouts.total;
        let mut sender = self.connection(deadline).await?;
        let sent = sender.sender.send_request(self.request(body));
        let response = match timeout_at(deadline, sent).await {
            Err(_) => return Err(attempt_timed_out(self.timeouts)),
            Ok(Err(e)) => return Err(before_response(&e)),
            Ok(Ok(response)) => response,
        };
        let (parts, incoming) = response.into_parts();
        let body = HyperBody {
            incoming,
            lease: Some((sender, self.pool.clone())),
            deadline,
            timeouts: self.timeouts,
        };
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: Body::Hyper(body),
        })
    }

    fn request(&self, body: Vec<u8>) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from(self.path.clone());
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request
    }

    /// An idle pooled connection once it is ready, else a new one.
    async fn connection(&self, deadline: Instant) -> Result<CountedSender, Failure> {
        loop {
            let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut pooled) = pooled else { break };
            // A connection the server closed while idle fails here and is dropped.
            if pooled.sender.ready().await.is_ok() {
                return Ok(pooled);
            }
        }
        let until = deadline.min(Instant::now() + self.timeouts.connect);
        match timeout_at(until, self.dial()).await {
            Err(_) if until < deadline => Err((
                ErrorClass::Timeout,
                format!(
                    "timed out connecting after {:?} (client.connect_timeout_s)",
                    self.timeouts.connect
                ),
            )),
            Err(_) => Err(attempt_timed_out(self.timeouts)),
            Ok(Err(e)) => Err((ErrorClass::Connect, error_chain(&e))),
            Ok(Ok(sender)) => Ok(self.held.count(sender)),
        }
    }

    /// Connects to the first address that answers and starts the HTTP/1.1 connection.
    async fn dial(&self) -> std::io::Result<Sender> {
        let mut last = std::io::Error::other("the host resolved to no address");
        for &addr in &self.addrs {
            match dial(self.sockets, addr).await {
                Ok(sender) => return Ok(sender),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

async fn dial(sockets: Sockets, addr: SocketAddr) -> std::io::Result<Sender> {
    match sockets {
        Sockets::Tokio => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let io = hyper_util::rt::TokioIo::new(stream);
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(connection);
            Ok(sender)
        }
        #[cfg(target_os = "linux")]
        Sockets::IoUring => super::uring::dial(addr).await,
        #[cfg(not(target_os = "linux"))]
        Sockets::IoUring => Err(std::io::Error::other("io_uring needs Linux")),
    }
}

/// A response body being read; its connection returns to the pool once the body has
/// been read to its end, and is closed if it is dropped before.
pub struct HyperBody {
    incoming: hyper::body::Incoming,
    lease: Option<(CountedSender, Pool)>,
    deadline: Instant,
    timeouts: Timeouts,
}

impl HyperBody {
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            let idle_end = Instant::now() + self.timeouts.idle;
            let frame = match timeout_at(idle_end.min(self.deadline), self.incoming.frame()).await {
                Err(_) => return Err(self.timed_out(idle_end)),
                Ok(None) => {
                    self.release();
                    return Ok(None);
                }
                Ok(Some(Err(e))) => return Err((ErrorClass::Protocol, error_chain(&e))),
                Ok(Some(Ok(frame))) => frame,
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
        if let Some((sender, pool)) = self.lease.take() {
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(sender);
        }
    }

    fn timed_out(&self, idle_end: Instant) -> Failure {
        if idle_end < self.deadline {
            let idle = self.timeouts.idle;
            let message = format!("timed out: no bytes for {idle:?} (client.idle_timeout_s)");
            (ErrorClass::Timeout, message)
        } else {
            attempt_timed_out(self.timeouts)
        }
    }
}

fn attempt_timed_out(timeouts: Timeouts) -> Failure {
    let total = timeouts.total;
    let message = format!("timed out: the attempt took longer than {total:?} (client.timeout_s)");
    (ErrorClass::Timeout, message)
}
