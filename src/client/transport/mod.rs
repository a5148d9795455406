//! The HTTP library under the client: reqwest, or hyper's client connections (HTTP/1.1
//! and HTTP/2, plain or TLS) over tokio or io_uring sockets. The client above reads
//! every one of them the same way (status, version, headers, body chunks), so the SSE
//! parsing and the recording are the same code whichever library and runtime carry the
//! bytes. Also keeps the HTTP versions responses came in.

mod hyper_client;
mod reqwest_client;
mod tls;
#[cfg(target_os = "linux")]
pub mod uring;

use crate::client::ErrorClass;
use crate::scenario::HttpLibrary;
use bytes::Bytes;
use http::HeaderMap;
use hyper_client::{HyperBody, HyperTransport};
use rustls::pki_types::CertificateDer;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// A failed exchange: its class and a message for the user.
pub type Failure = (ErrorClass, String);

/// Where the hyper client's sockets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    /// tokio's epoll-driven `TcpStream`.
    Tokio,
    /// tokio-uring's `TcpStream`: reads and writes submitted to an io_uring.
    IoUring,
}

/// Timeouts of one attempt, from `[client]`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
    pub idle: Duration,
}

/// Which HTTP a transport speaks, and whom it trusts over TLS.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// HTTP/2 only: prior knowledge (h2c) on `http://`, the one ALPN offer on `https://`.
    pub http2: bool,
    /// Certificate authorities trusted on top of the system's (a target's `ca_file`).
    pub roots: Vec<CertificateDer<'static>>,
}

/// Sends requests over one HTTP library, with a connection pool of its own.
pub enum Transport {
    Reqwest(reqwest::Client),
    Hyper(Box<HyperTransport>),
}

impl Transport {
    /// A transport for requests to `url` (the base URL and the API's path).
    pub fn new(
        library: HttpLibrary,
        sockets: Sockets,
        url: &str,
        headers: HeaderMap,
        timeouts: Timeouts,
        settings: &HttpSettings,
    ) -> anyhow::Result<Transport> {
        Ok(match library {
            HttpLibrary::Reqwest => {
                Transport::Reqwest(reqwest_client::build(headers, timeouts, settings)?)
            }
            HttpLibrary::Hyper => Transport::Hyper(Box::new(HyperTransport::new(
                url,
                sockets,
                headers,
                timeouts,
                (settings.http2, &settings.roots),
            )?)),
        })
    }

    /// The most connections the transport held at once, where the library says
    /// (hyper's pool is ours; reqwest's does not tell).
    pub fn peak_connections(&self) -> Option<u64> {
        match self {
            Transport::Reqwest(_) => None,
            Transport::Hyper(hyper) => Some(hyper.peak_connections()),
        }
    }

    /// POSTs a JSON `body` to `url`. An `Err` means no response came: the connection
    /// failed or timed out first.
    pub async fn post(&self, url: &str, body: Vec<u8>) -> Result<Response, Failure> {
        match self {
            Transport::Reqwest(client) => reqwest_client::post(client, url, body).await,
            Transport::Hyper(hyper) => hyper.post(body).await,
        }
    }
}

/// A response whose status line and headers have arrived; the body is read by chunks.
pub struct Response {
    /// How long this request waited for a connection to be opened (TCP, TLS and HTTP
    /// handshakes; its own, or the shared HTTP/2 one another request was opening);
    /// `None` when it took one already open, or the library does not say (reqwest).
    pub opened: Option<std::time::Duration>,
    pub status: u16,
    pub version: http::Version,
    pub headers: HeaderMap,
    body: Body,
}

enum Body {
    Reqwest(reqwest::Response),
    Hyper(HyperBody),
}

impl Response {
    /// The next piece of the body as it came off the network; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        match &mut self.body {
            Body::Reqwest(response) => reqwest_client::chunk(response).await,
            Body::Hyper(body) => body.chunk().await,
        }
    }

    /// The value of header `name` as trimmed text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok().map(str::trim)
    }
}

/// The HTTP versions responses came in, as a set: one relaxed load per response (a
/// read-modify-write only the first time a version is seen).
#[derive(Debug, Default)]
pub struct VersionsSeen(AtomicU8);

impl VersionsSeen {
    const HTTP1: u8 = 1;
    const HTTP2: u8 = 2;
    const OTHER: u8 = 4;

    pub fn note(&self, version: http::Version) {
        let bit = match version {
            http::Version::HTTP_2 => Self::HTTP2,
            http::Version::HTTP_11 | http::Version::HTTP_10 => Self::HTTP1,
            _ => Self::OTHER,
        };
        if self.0.load(Ordering::Relaxed) & bit == 0 {
            self.0.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// `HTTP/1.1`, `HTTP/2`, both (`HTTP/1.1 + HTTP/2`), or empty before any response.
    pub fn describe(&self) -> String {
        let seen = self.0.load(Ordering::Relaxed);
        [
            (Self::HTTP1, "HTTP/1.1"),
            (Self::HTTP2, "HTTP/2"),
            (Self::OTHER, "other"),
        ]
        .into_iter()
        .filter(|(bit, _)| seen & bit != 0)
        .map(|(_, name)| name)
        .collect::<Vec<_>>()
        .join(" + ")
    }
}

/// An error and the chain of its sources, which holds the useful part ("connection
/// refused", "connection reset").
fn error_chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> String {
    let chain = || std::iter::successors(Some(e), |e: &&'a _| e.source());
    let mut message = chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    let out_of_files = chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::EMFILE))
    });
    if out_of_files {
        message.push_str(OUT_OF_FILES_HINT);
    }
    message
}

/// The class of a failure before any response: `protocol` when the server answered
/// with something that is not HTTP (a parse error anywhere in the chain), else `connect`.
fn before_response(e: &(dyn std::error::Error + 'static)) -> Failure {
    let chain = std::iter::successors(Some(e), |e| e.source());
    let unparsable = chain
        .filter_map(|e| e.downcast_ref::<hyper::Error>())
        .any(|e| e.is_parse() || e.is_parse_status() || e.is_parse_too_large());
    let class = if unparsable {
        ErrorClass::Protocol
    } else {
        ErrorClass::Connect
    };
    (class, error_chain(e))
}

/// An open-loop arrival against a server that falls behind keeps opening connections;
/// the bare OS error does not say what to change.
const OUT_OF_FILES_HINT: &str = " (every request in flight holds a socket: cap them with a \
    strategy's `limit`, or raise the hard open-file limit, `ulimit -Hn`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn versions_seen_describe_each_version_once() {
        let seen = VersionsSeen::default();
        assert_eq!(seen.describe(), "");
        seen.note(http::Version::HTTP_2);
        seen.note(http::Version::HTTP_2);
        assert_eq!(seen.describe(), "HTTP/2");
        seen.note(http::Version::HTTP_11);
        assert_eq!(seen.describe(), "HTTP/1.1 + HTTP/2");
    }

    #[test]
    fn error_chain_joins_sources_and_explains_running_out_of_files() {
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            error_chain(&refused),
            "client error (Connect): connection refused"
        );
        let out_of_files = Wrapper(std::io::Error::from_raw_os_error(libc::EMFILE));
        let message = error_chain(&out_of_files);
        assert!(message.starts_with("client error (Connect): "), "{message}");
        assert!(message.ends_with(OUT_OF_FILES_HINT), "{message}");
    }
}
