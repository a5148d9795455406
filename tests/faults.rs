//! Every fault kind, forced by header on both APIs, and as llmbench's client classifies it.

mod common;

use llmbench::mock::MockServer;
use llmbench::recorder::{ErrorClass, Outcome};
use llmbench::scenario::{Distribution, MillisDistribution, MockConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn mock() -> MockServer {
    let mut config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 2.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        ..MockConfig::default()
    };
    config.faults.stall_s = Some(llmbench::scenario::Seconds(0.5));
    MockServer::start_local(config, 1).unwrap()
}

/// OpenAI and Anthropic requests for 4 streamed tokens.
fn requests() -> [(&'static str, Value); 2] {
    [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 4, "stream": true}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 4, "stream": true}),
        ),
    ]
}

async fn send(
    mock: &MockServer,
    path: &str,
    body: &Value,
    fault: &str,
) -> (u16, Result<String, reqwest::Error>) {
    let response = common::http()
        .post(format!("{}{path}", mock.base_url()))
        .header("content-type", "application/json")
        .header("x-llmbench-fault", fault)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await)
}

#[tokio::test]
async fn http_faults_answer_with_each_providers_status_and_envelope() {
    let mock = mock();
    for (path, body) in requests() {
        for (fault, status) in [("429", 429), ("500", 500), ("503", 503), ("529", 529)] {
            let (got, text) = send(&mock, path, &body, fault).await;
            assert_eq!(got, status, "{path} {fault}");
            let error: Value = serde_json::from_str(&text.unwrap()).unwrap();
            if path == "/v1/messages" {
                assert_eq!(error["type"], "error");
                let expected = match status {
                    429 => "rate_limit_error",
                    529 => "overloaded_error",
                    _ => "api_error",
                };
                assert_eq!(error["error"]["type"], expected, "{fault}");
            } else {
                assert!(error["error"]["message"].is_string(), "{fault}");
            }
        }
    }
    assert_eq!(mock.stats().faults, 8);
}

#[tokio::test]
async fn stream_faults_strike_half_way() {
    let mock = mock();
    for (path, body) in requests() {
        let (status, text) = send(&mock, path, &body, "error-event").await;
        assert_eq!(status, 200);
        let text = text.unwrap();
        let tokens = text.matches("text_delta").count() + text.matches("\"content\":\" ").count();
        assert_eq!(tokens, 2, "two of four tokens before the fault: {text}");
        if path == "/v1/messages" {
            assert!(text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), "{text}");
        } else {
            assert!(
                text.trim_end()
                    .ends_with("\"type\":\"server_error\",\"param\":null,\"code\":null}}"),
                "{text}"
            );
            assert!(!text.contains("[DONE]"));
        }

        let (_, text) = send(&mock, path, &body, "malformed").await;
        let text = text.unwrap();
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        let data = last.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        assert!(
            serde_json::from_str::<Value>(data).is_err(),
            "malformed: {last:?}"
        );

        let (status, text) = send(&mock, path, &body, "disconnect").await;
        assert_eq!(status, 200);
        assert!(text.is_err(), "the connection drops mid-body");

        let started = Instant::now();
        let (_, text) = send(&mock, path, &body, "stall").await;
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "stalled for stall_s"
        );
        assert!(text.unwrap().matches("delta").count() >= 4, "then finishes");
    }
    let (status, text) = send(&mock, "/v1/messages", &requests()[1].1, "teapot").await;
    assert_eq!(status, 400);
    assert!(text.unwrap().contains("unknown x-llmbench-fault value"));
}

/// The outcome llmbench records when every request gets `fault`, over HTTP/1.1 or h2c.
async fn classified(fault: &str, http2: bool) -> Vec<Outcome> {
    let src = format!(
        r#"
name = "faults"
[target]
kind = "mock"
[mock]
ttft_ms = 2
itl_ms = 1
faults = {{ {fault} = 1.0, stall_s = 3 }}
[client]
idle_timeout_s = 0.3
[workload]
requests = 2
max_tokens = 4
[[strategy]]
kind = "serial"
http2 = {http2}
"#
    );
    let run = common::run(&src).await;
    run.records_of(&run.strategies[0])
        .iter()
        .map(|r| r.outcome)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llmbench_classifies_every_fault() {
    let cases = [
        ("error_429", ErrorClass::RateLimited),
        ("error_500", ErrorClass::ServerError),
        ("error_503", ErrorClass::ServerError),
        ("error_529", ErrorClass::ServerError),
        ("disconnect", ErrorClass::Protocol),
        ("error_event", ErrorClass::Protocol),
        ("malformed", ErrorClass::Protocol),
        ("stall", ErrorClass::Timeout),
    ];
    // Over HTTP/2 the mock paces streams on the connection's task (an injected
    // disconnect resets the stream) and forwards whole responses from the request's.
    for http2 in [false, true] {
        for (fault, class) in cases {
            assert_eq!(
                classified(fault, http2).await,
                vec![Outcome::Failed(class); 2],
                "{fault}, http2 {http2}"
            );
        }
    }
}
