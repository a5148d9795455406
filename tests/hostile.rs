//! Hostile and broken endpoints (all on this machine): a run against them ends in
//! bounded time and memory, classifies what went wrong, and never stores or prints a
//! secret the server echoes back.

mod common;

use llmbench::recorder::{ErrorClass, Outcome};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer as WireMock, ResponseTemplate};

/// A wiremock server answering every POST with `response`.
async fn answering(response: ResponseTemplate) -> WireMock {
    let server = WireMock::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// A scenario of `requests` serial requests to an OpenAI-compatible `base_url`.
fn scenario(base_url: &str, requests: u32, extra: &str) -> String {
    format!(
        "name = \"h\"\n[target]\nkind = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\n\
         [workload]\nrequests = {requests}\nmax_tokens = 3\n{extra}\n[[strategy]]\nkind = \"serial\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_days_ends_in_bounded_time_under_every_policy() {
    let server = answering(ResponseTemplate::new(429).insert_header("retry-after", "999999")).await;
    for policy in [
        "policy = \"openai-python\"",
        "policy = \"anthropic-python\"",
        "policy = \"exponential\"\nbase_ms = 10\ncap_ms = 20",
    ] {
        let started = Instant::now();
        let run = common::run(&scenario(&server.uri(), 2, &format!("[retry]\n{policy}"))).await;
        // Generous: the exponential policy backs off at most 20 ms twice per request.
        assert!(started.elapsed() < Duration::from_secs(20), "{policy}");
        for record in run.records_of(&run.strategies[0]) {
            assert_eq!(
                record.outcome,
                Outcome::Failed(ErrorClass::RateLimited),
                "{policy}"
            );
            if !policy.contains("exponential") {
                let error = record.error.as_deref().unwrap_or_default();
                assert!(
                    error.contains("not retried: the server asked to wait 999999 s"),
                    "{policy}: {error}"
                );
                assert_eq!(record.attempts, 1, "{policy}");
            }
        }
    }
}

/// Answers every request with `status` and a body echoing the credentials it was sent
/// (as a careless gateway does), `at` bytes into the body; with `stream`, as an SSE
/// error event after one token instead.
struct Echo {
    status: u16,
    at: usize,
    stream: bool,
}

impl wiremock::Respond for Echo {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let sent: Vec<String> = ["authorization", "x-api-key", "api-key"]
            .iter()
            .filter_map(|h| request.headers.get(*h)?.to_str().ok().map(String::from))
            .collect();
        let echoed = format!(
            "{}invalid credentials: {}",
            "x".repeat(self.at),
            sent.join(", ")
        );
        if !self.stream {
            return ResponseTemplate::new(self.status)
                .set_body_json(serde_json::json!({"error": {"message": echoed}}));
        }
        let error =
            serde_json::json!({"error": {"message": echoed, "type": "invalid_request_error"}});
        let body = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hi\"}},\"finish_reason\":null}}]}}\n\n\
             event: error\ndata: {error}\n\n"
        );
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/event-stream")
            .set_body_string(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_a_server_echoes_back_are_stored_and_printed_nowhere() {
    let key = "sk-llmbench-echo-5b7d0c2e9f41a3";
    // (target kind and extra keys, the server's behaviour)
    let cases = [
        (
            "openai\"\napi_key_env = \"LLMBENCH_ECHO_KEY\"",
            Echo {
                status: 401,
                at: 0,
                stream: false,
            },
        ),
        // The key straddles the 200-byte cut of the error excerpt.
        (
            "openai\"\napi_key_env = \"LLMBENCH_ECHO_KEY\"",
            Echo {
                status: 400,
                at: 140,
                stream: false,
            },
        ),
        (
            "openai\"\napi_key_env = \"LLMBENCH_ECHO_KEY\"",
            Echo {
                status: 200,
                at: 0,
                stream: true,
            },
        ),
        (
            "anthropic\"\napi_key_env = \"LLMBENCH_ECHO_KEY\"",
            Echo {
                status: 401,
                at: 0,
                stream: false,
            },
        ),
        (
            "openai\"\nheaders = { api-key = { env = \"LLMBENCH_ECHO_KEY\" } }",
            Echo {
                status: 500,
                at: 0,
                stream: false,
            },
        ),
    ];
    for (target, echo) in cases {
        let server = WireMock::start().await;
        Mock::given(method("POST"))
            .respond_with(echo)
            .mount(&server)
            .await;
        let src = format!(
            "name = \"echo\"\n[target]\nkind = \"{target}\nbase_url = \"{}\"\nmodel = \"m\"\n\
             [workload]\nrequests = 2\nmax_tokens = 3\n[[strategy]]\nkind = \"serial\"\n",
            server.uri()
        );
        let (out, dir) = tokio::task::spawn_blocking(move || {
            common::run_binary(&src, &[("LLMBENCH_ECHO_KEY", key)])
        })
        .await
        .unwrap();
        let out_dir = dir.path().join("out");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{target}: no request succeeded: {stderr}"
        );
        assert!(
            stderr.contains("[redacted]"),
            "{target}: the first error is shown, redacted: {stderr}"
        );
        for part in [key, &key[..11]] {
            assert!(
                !stdout.contains(part) && !stderr.contains(part),
                "{target}: {stderr}"
            );
        }
        common::assert_written_nowhere(&out_dir, key);
        common::assert_written_nowhere(&out_dir, &key[..11]);
    }
}

/// A raw HTTP/1.1 server on loopback answering every connection with `head` and then
/// `x` bytes without a line end, until the client hangs up or 256 MiB went out.
async fn endless(head: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..4096 {
                    if socket.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_or_body_fails_as_protocol_at_the_limit() {
    let stream = endless("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").await;
    let whole = endless("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n").await;
    for (url, extra, says) in [
        (
            &stream,
            "[client]\nmax_event_bytes = 65536",
            "an SSE event exceeded 65536 bytes",
        ),
        (
            &whole,
            "stream = false\n[client]\nmax_body_bytes = 100000",
            "the response body exceeded 100000 bytes",
        ),
    ] {
        for library in ["reqwest", "hyper"] {
            let src = scenario(url, 2, extra).replace(
                "kind = \"serial\"",
                &format!("kind = \"serial\"\nclient = \"{library}\""),
            );
            let run = common::run(&src).await;
            for record in run.records_of(&run.strategies[0]) {
                assert_eq!(
                    record.outcome,
                    Outcome::Failed(ErrorClass::Protocol),
                    "{library}"
                );
                let error = record.error.as_deref().unwrap_or_default();
                assert!(error.contains(says), "{library}: {error}");
            }
        }
    }
}

/// The largest peak memory of any child process this test binary has waited for, in
/// MiB (the other tests here start only small ones).
#[cfg(unix)]
fn children_peak_mib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss / 1024
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_limits_an_endless_stream_leaves_a_run_small() {
    let stream = endless("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").await;
    for library in ["reqwest", "hyper"] {
        let src = scenario(&stream, 2, "").replace(
            "kind = \"serial\"",
            &format!("kind = \"serial\"\nclient = \"{library}\""),
        );
        let (out, _dir) = tokio::task::spawn_blocking(move || common::run_binary(&src, &[]))
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{library}: {stderr}");
        assert!(
            stderr.contains("an SSE event exceeded 1048576 bytes"),
            "{library}: {stderr}"
        );
    }
    // Each request was offered 256 MiB without a line end; a client holding it would
    // peak above that. 128 MiB is the process with room to spare.
    let peak = children_peak_mib();
    assert!(peak < 128, "a run peaked at {peak} MiB");
}

#[test]
fn a_url_with_a_password_is_refused_without_repeating_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("userinfo.toml");
    std::fs::write(
        &file,
        "name = \"u\"\n[target]\nkind = \"openai\"\nbase_url = \"http://user:hunter2-secret@127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [workload]\nrequests = 1\n[[strategy]]\nkind = \"serial\"\n",
    )
    .unwrap();
    let out = common::llmbench(&["validate", file.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`base_url`") && stderr.contains("holds credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_http_is_a_protocol_error() {
    let ssh = endless("SSH-2.0-OpenSSH_9.2\r\n").await;
    for library in ["reqwest", "hyper"] {
        let src = scenario(&ssh, 2, "").replace(
            "kind = \"serial\"",
            &format!("kind = \"serial\"\nclient = \"{library}\""),
        );
        let run = common::run(&src).await;
        for record in run.records_of(&run.strategies[0]) {
            assert_eq!(
                record.outcome,
                Outcome::Failed(ErrorClass::Protocol),
                "{library}: {:?}",
                record.error
            );
        }
    }
}
