//! HTTP/2 and TLS: both clients over HTTP/1.1 and HTTP/2 (h2c with prior knowledge) on
//! every runtime, and over TLS with the protocol ALPN picks, against a local server
//! (hyper's, serving HTTP/1.1 and h2c on one port, optionally behind rustls with a
//! certificate made in the test and trusted through `target.ca_file`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use llmbench::recorder::Outcome;
use llmbench::result::{RunResult, StrategyResult};
use llmbench::scenario::{RuntimeKind, Scenario};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio_util::sync::CancellationToken;

/// OpenAI's streamed chat completion: two content chunks (one inter-token gap) and
/// `usage` of 2 output tokens.
const OPENAI_STREAM: &[&str] = &[
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
    "data: [DONE]\n\n",
];

/// The events of [`OPENAI_STREAM`] as separate frames, 2 ms apart, so that the tokens
/// arrive as a server streams them.
struct Events {
    left: VecDeque<&'static str>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(pause) = &mut self.pause {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let Some(event) = self.left.pop_front() else {
            return Poll::Ready(None);
        };
        self.pause = Some(Box::pin(tokio::time::sleep(
            std::time::Duration::from_millis(2),
        )));
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(event.as_bytes())))))
    }
}

/// What the server saw: connections accepted, requests by HTTP version.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    http1: AtomicU64,
    http2: AtomicU64,
}

struct TestServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

async fn answer(
    request: http::Request<Incoming>,
    seen: Arc<Seen>,
) -> Result<http::Response<Events>, Infallible> {
    let counter = match request.version() {
        http::Version::HTTP_2 => &seen.http2,
        _ => &seen.http1,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let _ = request.into_body().collect().await;
    let body = Events {
        left: OPENAI_STREAM.iter().copied().collect(),
        pause: None,
    };
    Ok(http::Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap())
}

/// A server answering every request with [`OPENAI_STREAM`]: HTTP/1.1 and h2c on one
/// port, or, with `tls`, either behind TLS (the protocol from ALPN).
async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counts.connections.fetch_add(1, Ordering::Relaxed);
            let seen = counts.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| answer(r, seen.clone()));
                let server = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = match tls {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        server.serve_connection(io, service).await
                    }
                    Some(tls) => {
                        let Ok(stream) = tls.accept(stream).await else {
                            return;
                        };
                        let io = hyper_util::rt::TokioIo::new(stream);
                        server.serve_connection(io, service).await
                    }
                };
            });
        }
    });
    TestServer { addr, seen }
}

fn scenario(base_url: &str, target_extra: &str, strategies: &str) -> String {
    format!(
        "name = \"h\"\n[target]\nkind = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\n{target_extra}\n\
         [workload]\nrequests = 16\nmax_tokens = 2\n{strategies}"
    )
}

/// Every client, runtime and protocol over plain http: hyper's HTTP/1.1 as the control.
const PLAIN: &str = r#"
[[strategy]]
kind = "semaphore"
limit = 8
client = "hyper"
label = "hyper-http1"
[[strategy]]
kind = "semaphore"
limit = 8
client = "hyper"
http2 = true
label = "multi-hyper-h2"
[[strategy]]
kind = "join_all"
runtime = "tokio-current"
client = "hyper"
http2 = true
label = "current-hyper-h2"
[[strategy]]
kind = "semaphore"
limit = 8
runtime = "tokio-uring"
http2 = true
label = "uring-hyper-h2"
[[strategy]]
kind = "semaphore"
limit = 8
client = "reqwest"
label = "reqwest-http1"
[[strategy]]
kind = "semaphore"
limit = 8
http2 = true
client = "reqwest"
label = "reqwest-h2"
"#;

/// The strategies that ran; a tokio-uring one may only be skipped where io_uring is
/// unavailable, and then with the reason.
fn ran(run: &RunResult) -> Vec<&StrategyResult> {
    match RuntimeKind::TokioUring.unavailable() {
        None => assert!(run.skipped.is_empty(), "{:?}", run.skipped),
        Some(reason) => {
            assert!(run.skipped.iter().all(|s| s.reason == reason));
            assert!(run.skipped.iter().all(|s| s.label.starts_with("uring")));
        }
    }
    run.strategies.iter().collect()
}

/// (ok, output tokens, ITL samples) of a strategy.
fn counts(s: &StrategyResult) -> (u64, u64, u64) {
    assert!(
        s.tally.first_error.is_none(),
        "{}: {:?}",
        s.label,
        s.tally.first_error
    );
    (s.counts().ok, s.output_tokens(), s.tally.itl.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_give_identical_counts_on_every_runtime_and_client() {
    let server = serve(None).await;
    let run = common::run(&scenario(&format!("http://{}", server.addr), "", PLAIN)).await;
    let strategies = ran(&run);
    assert!(strategies.len() >= 5, "{}", strategies.len());
    for s in &strategies {
        assert_eq!(counts(s), (16, 32, 16), "{}", s.label);
        let expected = match s.label.ends_with("-h2") {
            true => "HTTP/2",
            false => "HTTP/1.1",
        };
        assert_eq!(s.http_version, expected, "{}", s.label);
        if s.label.contains("hyper-h2") {
            // Multiplexed: one connection carries every request in flight.
            assert_eq!(s.pool_peak_connections, Some(1), "{}", s.label);
        }
    }
    let h2 = strategies
        .iter()
        .filter(|s| s.label.ends_with("-h2"))
        .count() as u64;
    assert_eq!(server.seen.http2.load(Ordering::Relaxed), 16 * h2);
    assert_eq!(server.seen.http1.load(Ordering::Relaxed), 16 * 2);
    // Each HTTP/2 strategy opened one connection (reqwest's pool may race a second, see
    // below); HTTP/1.1 up to one per request in flight.
    let reqwest_h2 = strategies
        .iter()
        .filter(|s| s.label.starts_with("reqwest") && s.label.ends_with("-h2"))
        .count() as u64;
    let connections = server.seen.connections.load(Ordering::Relaxed);
    assert!(connections <= h2 + reqwest_h2 + 2 * 8, "{connections}");
}

/// A thousand streams at once on one HTTP/2 connection, five times hyper's default
/// stream limit: each gets its first token at the configured 500 ms. Were the mock's
/// limit 200, 800 of them would wait 1.5 s for a stream and see 2 s or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_share_one_http2_connection_at_once() {
    let src = "name = \"h2-wide\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 500\nitl_ms = 500\n\
               output_tokens = 3\n[workload]\nrequests = 1000\nmax_tokens = 3\n\
               [[strategy]]\nkind = \"join_all\"\nclient = \"hyper\"\nhttp2 = true\n";
    let run = common::run(src).await;
    let s = &run.strategies[0];
    assert_eq!(s.counts().ok, 1000);
    assert_eq!(s.mock.unwrap().connections, 1);
    // A second of slack for a loaded machine, below the 2 s a queue would make it.
    let slowest = Duration::from_micros(s.tally.ttft.max());
    assert!(
        slowest < Duration::from_millis(1500),
        "slowest first token {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mock_serves_http2_and_http1_alike() {
    // The same seeded work and mock draws over HTTP/1.1 and h2c: identical counts, and
    // every HTTP/2 strategy's requests on one connection the mock accepted.
    let src = format!(
        "name = \"mock-h2\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 5\nitl_ms = 1\n\
         output_tokens = {{ dist = \"uniform\", min = 1, max = 12 }}\n[workload]\nrequests = 16\n\
         seed = 3\nmax_tokens = 12\n{PLAIN}"
    );
    let run = common::run(&src).await;
    let strategies = ran(&run);
    assert!(strategies.len() >= 5, "{}", strategies.len());
    let expected = counts(strategies[0]);
    for s in &strategies {
        assert_eq!(counts(s), expected, "{}", s.label);
        let h2 = s.label.ends_with("-h2");
        // requests.csv's connect_us: the hyper client times the requests that waited
        // for a connection to open (over HTTP/1.1 exactly one per connection the mock
        // accepted; over HTTP/2 the opener and those that waited for it); reqwest
        // does not say.
        let opened = run
            .records_of(s)
            .iter()
            .filter(|r| r.connect.is_some_and(|c| c > std::time::Duration::ZERO))
            .count() as u64;
        let accepted = s.mock.unwrap().connections;
        match (s.label.starts_with("reqwest"), h2) {
            (true, _) => assert_eq!(opened, 0, "{}", s.label),
            (false, false) => assert_eq!(opened, accepted, "{}", s.label),
            // join_all's 16 start together, and all wait for the one connection.
            (false, true) => assert!((1..=16).contains(&opened), "{}: {opened}", s.label),
        }
        assert_eq!(
            s.http_version,
            if h2 { "HTTP/2" } else { "HTTP/1.1" },
            "{}",
            s.label
        );
        if h2 {
            // reqwest's pool (hyper-util's legacy pool) can race a second connection
            // when the first requests check out together, before the first handshake
            // is done; the hyper client shares one connection by construction.
            let most = if s.label.starts_with("reqwest") { 2 } else { 1 };
            let connections = s.mock.unwrap().connections;
            assert!(
                (1..=most).contains(&connections),
                "{}: {connections}",
                s.label
            );
        }
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, written as `ca.pem` into
/// `folder`, and a TLS acceptor offering `alpn`.
fn tls_server_config(folder: &std::path::Path, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(folder.join("ca.pem"), certified.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

const OVER_TLS: &str = r#"
[[strategy]]
kind = "semaphore"
limit = 4
client = "hyper"
label = "multi-hyper"
[[strategy]]
kind = "semaphore"
limit = 4
runtime = "tokio-current"
client = "hyper"
label = "current-hyper"
[[strategy]]
kind = "semaphore"
limit = 4
runtime = "tokio-uring"
label = "uring-hyper"
[[strategy]]
kind = "semaphore"
limit = 4
client = "reqwest"
label = "reqwest"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_every_client_and_runtime_speaks_what_alpn_picked() {
    for (alpn, expected) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], "HTTP/2"),
        (&[b"http/1.1".as_slice()][..], "HTTP/1.1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(Some(tls_server_config(dir.path(), alpn))).await;
        let src = scenario(
            &format!("https://localhost:{}", server.addr.port()),
            "ca_file = \"ca.pem\"",
            OVER_TLS,
        );
        let outcome = common::run_in(&src, dir.path(), CancellationToken::new()).await;
        let strategies = ran(&outcome.result);
        assert!(strategies.len() >= 3);
        for s in strategies {
            assert_eq!(counts(s), (16, 32, 16), "{expected}: {}", s.label);
            assert_eq!(s.http_version, expected, "{}", s.label);
            if expected == "HTTP/2" && s.label.contains("hyper") {
                assert_eq!(s.pool_peak_connections, Some(1), "{}", s.label);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_as_connect_on_both_clients() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(Some(tls_server_config(dir.path(), &[b"h2"]))).await;
    let src = scenario(
        &format!("https://127.0.0.1:{}", server.addr.port()),
        "",
        "[[strategy]]\nkind = \"serial\"\nclient = \"hyper\"\n[[strategy]]\nkind = \"serial\"\nclient = \"reqwest\"\nlabel = \"reqwest\"",
    );
    let run = common::run(&src).await;
    for s in &run.strategies {
        let record = &run.records_of(s)[0];
        assert_eq!(
            record.outcome,
            Outcome::Failed(llmbench::recorder::ErrorClass::Connect),
            "{}: {:?}",
            s.label,
            record.error
        );
        let error = record.error.as_deref().unwrap().to_lowercase();
        assert!(error.contains("certificate"), "{}: {error}", s.label);
    }
}

#[test]
fn ca_file_is_checked_when_the_scenario_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    tls_server_config(dir.path(), &[]);
    let parse = |url: &str, file: &str| {
        let src = scenario(
            url,
            &format!("ca_file = \"{file}\""),
            "[[strategy]]\nkind = \"serial\"",
        );
        Scenario::parse_in(&src, "t.toml", dir.path()).map_err(|e| e.to_string())
    };
    parse("https://gateway.internal", "ca.pem").unwrap();
    let cases = [
        ("https://gateway.internal", "missing.pem", "cannot read"),
        (
            "https://gateway.internal",
            "empty.pem",
            "holds no certificate",
        ),
        (
            "http://gateway.internal",
            "ca.pem",
            "applies to https:// targets only",
        ),
    ];
    for (url, file, expected) in cases {
        let err = parse(url, file).unwrap_err();
        assert!(err.contains("target.ca_file: "), "{err}");
        assert!(err.contains(expected), "{file}: {err}");
    }
    let src = "name = \"h\"\n[target]\nkind = \"mock\"\nca_file = \"ca.pem\"\n[workload]\nrequests = 1\n[[strategy]]\nkind = \"serial\"";
    let err = Scenario::parse_in(src, "t.toml", dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `ca_file`"), "{err}");
}
