//! The embedded mock speaks OpenAI Chat Completions exactly as the reference describes:
//! every frame, key and header a client parses.

mod common;

use llmbench::mock::MockServer;
use llmbench::scenario::{
    ByteCount, Count, Distribution, MillisDistribution, MockConfig, RateLimitConfig,
    TokenDistribution,
};
use serde_json::{Value, json};

fn fast_mock(rpm: Option<u64>) -> MockServer {
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 5.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        rate_limit: RateLimitConfig {
            rpm: rpm.map(Count),
            ..RateLimitConfig::default()
        },
        ..MockConfig::default()
    };
    MockServer::start_local(config, 1).expect("mock starts")
}

/// POSTs `body` to `path` with `headers`; returns the status, headers and body text.
async fn send(
    mock: &MockServer,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = common::http()
        .post(format!("{}{path}", mock.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("mock answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn post(mock: &MockServer, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
    send(mock, "/v1/chat/completions", &[], &body.to_string()).await
}

async fn post_to(
    mock: &MockServer,
    path: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    send(
        mock,
        path,
        &[("anthropic-version", "2023-06-01")],
        &body.to_string(),
    )
    .await
}

/// As [`send`], with an API key, the body parsed as JSON (null if it is not).
async fn post_keyed(
    mock: &MockServer,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let bearer = format!("Bearer {key}");
    let (status, headers, text) =
        send(mock, path, &[("authorization", &bearer)], &body.to_string()).await;
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn request(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}],
        "max_tokens": 4,
        "stream": stream,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Splits an event stream into its `data:` payloads, checking the framing on the way.
fn data_frames(text: &str) -> Vec<String> {
    assert!(text.ends_with("\n\n"), "stream must end with a blank line");
    text.trim_end_matches("\n\n")
        .split("\n\n")
        .map(|frame| {
            let payload = frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data frame: {frame:?}"));
            assert!(!payload.contains('\n'), "one line per frame: {frame:?}");
            payload.to_string()
        })
        .collect()
}

#[tokio::test]
async fn stream_with_usage_has_role_content_finish_usage_done() {
    let mock = fast_mock(None);
    let (status, headers, text) = post(&mock, request(true, true)).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let frames = data_frames(&text);
    assert_eq!(frames.len(), 1 + 4 + 1 + 1 + 1, "{frames:#?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();

    let first = &chunks[0];
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], first["id"]);
        assert_eq!(chunk["created"], first["created"]);
        assert_eq!(chunk["model"], "gpt-test");
        assert!(
            chunk.as_object().unwrap().contains_key("usage"),
            "usage key on every chunk"
        );
    }
    assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(first["usage"], Value::Null);
    let mut text_out = String::new();
    for chunk in &chunks[1..5] {
        let choice = &chunk["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], Value::Null);
        assert_eq!(choice["logprobs"], Value::Null);
        assert_eq!(
            choice["delta"].as_object().unwrap().len(),
            1,
            "content only"
        );
        text_out.push_str(choice["delta"]["content"].as_str().unwrap());
    }
    assert_eq!(text_out.split_whitespace().count(), 4);
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(
        chunks[6]["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
    assert_eq!(mock.stats().output_tokens_sent, 4);
}

#[tokio::test]
async fn stream_without_usage_has_no_usage_key_and_no_usage_chunk() {
    let mock = fast_mock(None);
    let (_, _, text) = post(&mock, request(true, false)).await;
    let frames = data_frames(&text);
    assert_eq!(frames.len(), 1 + 4 + 1 + 1);
    assert!(frames.iter().all(|f| !f.contains("usage")), "{frames:#?}");
}

#[tokio::test]
async fn whole_completion_body() {
    let mock = fast_mock(None);
    let (status, headers, text) = post(&mock, request(false, false)).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("openai-processing-ms"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(
        choice["message"]["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        4
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
}

#[tokio::test]
async fn chat_content_as_a_list_of_parts_is_read_like_a_string() {
    // As the SDKs' typed messages and frameworks such as GuideLLM send it: the same
    // words as `request`'s, as parts, give the same answer and the same prompt count.
    let mock = fast_mock(None);
    let mut parts = request(false, false);
    parts["messages"] = json!([
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]},
    ]);
    let (status, _, text) = post(&mock, parts).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
}

fn legacy_request(stream: bool, include_usage: bool) -> Value {
    let mut body =
        json!({"model": "gpt-3.5-turbo-instruct", "prompt": "one two three", "stream": stream});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn legacy_completions_stream_text_chunks_finish_usage_done() {
    let mock = fast_mock(None);
    let mut body = legacy_request(true, true);
    body["max_tokens"] = json!(3);
    let (status, headers, text) = send(&mock, "/v1/completions", &[], &body.to_string()).await;
    assert_eq!(status, 200);
    assert!(
        headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let frames = data_frames(&text);
    assert_eq!(frames.len(), 3 + 1 + 1 + 1, "no start frame: {frames:#?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..5]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let mut text_out = String::new();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "gpt-3.5-turbo-instruct");
        assert!(chunk.as_object().unwrap().contains_key("usage"));
    }
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("cmpl-"));
    for chunk in &chunks[..3] {
        let choice = &chunk["choices"][0];
        assert_eq!(
            (
                &choice["index"],
                &choice["logprobs"],
                &choice["finish_reason"]
            ),
            (&json!(0), &Value::Null, &Value::Null)
        );
        text_out.push_str(choice["text"].as_str().unwrap());
    }
    assert_eq!(text_out.split_whitespace().count(), 3);
    assert_eq!(chunks[3]["choices"][0]["text"], "");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(
        chunks[4]["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6})
    );

    let (_, _, text) = send(
        &mock,
        "/v1/completions",
        &[],
        &legacy_request(true, false).to_string(),
    )
    .await;
    let frames = data_frames(&text);
    assert_eq!(frames.len(), 16 + 1 + 1, "max_tokens defaults to 16");
    assert!(frames.iter().all(|f| !f.contains("usage")), "{frames:#?}");
}

#[tokio::test]
async fn legacy_completions_whole_body_and_its_refusals() {
    let mock = fast_mock(None);
    let mut body = legacy_request(false, false);
    body["prompt"] = json!(["one two three four"]);
    body["max_tokens"] = json!(5);
    let (status, _, text) = send(&mock, "/v1/completions", &[], &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["object"], "text_completion");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(
        choice["text"].as_str().unwrap().split_whitespace().count(),
        5
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
    for bad in [
        json!({"model": "m"}),
        json!({"model": "m", "prompt": ["a", "b"]}),
        json!({"model": "m", "prompt": "a", "max_tokens": 0}),
    ] {
        let (status, _, text) = send(&mock, "/v1/completions", &[], &bad.to_string()).await;
        assert_eq!(status, 400, "{bad}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{text}");
    }
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_headers() {
    let mock = fast_mock(Some(2));
    for remaining in ["1", "0"] {
        let (status, headers, _) = post(&mock, request(false, false)).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");
        assert_eq!(headers["x-ratelimit-remaining-requests"], remaining);
    }
    let (status, headers, text) = post(&mock, request(true, true)).await;
    assert_eq!(status, 429);
    // 2 RPM refills one request every 30 s.
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (29..=30).contains(&retry_after),
        "retry-after {retry_after}"
    );
    assert!(
        headers["x-ratelimit-reset-requests"]
            .to_str()
            .unwrap()
            .ends_with('s')
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["param"], Value::Null);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit reached for gpt-test")
    );
    let stats = mock.stats();
    assert_eq!(
        (stats.requests, stats.admitted, stats.rate_limited),
        (3, 2, 1)
    );

    mock.reset();
    let (status, _, _) = post(&mock, request(false, false)).await;
    assert_eq!(status, 200, "reset refills the bucket");
    assert_eq!(mock.stats().requests, 1, "reset zeroes the counters");
}

#[tokio::test]
async fn invalid_bodies_get_a_400_envelope() {
    let mock = fast_mock(None);
    for body in [
        json!({"messages": []}),
        json!({"model": "m", "messages": [], "max_tokens": 0}),
    ] {
        let (status, _, text) = post(&mock, body).await;
        assert_eq!(status, 400);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let response = common::http()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(mock.stats().invalid, 3);
}

fn messages_request(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 3,
        "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "one two three"}]}],
        "stream": stream,
    })
}

/// Splits an Anthropic stream into (event name, data) pairs, checking the framing.
fn named_frames(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"));
    text.trim_end_matches("\n\n")
        .split("\n\n")
        .map(|frame| {
            let (event, data) = frame
                .split_once('\n')
                .unwrap_or_else(|| panic!("{frame:?}"));
            let name = event
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("no event line: {frame:?}"));
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name, "the event line names the data's type");
            (name.to_string(), data)
        })
        .collect()
}

#[tokio::test]
async fn anthropic_stream_has_the_documented_event_sequence() {
    let mock = fast_mock(None);
    let (status, headers, text) = post_to(&mock, "/v1/messages", messages_request(true)).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let frames = named_frames(&text);
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let message = &frames[0].1["message"];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], json!([]));
    assert_eq!(message["stop_reason"], Value::Null);
    // 2 words of system prompt + 3 of message; output_tokens starts at 1.
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(
        frames[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(frames[3].1["delta"]["type"], "text_delta");
    assert_eq!(
        frames[6].1,
        json!({"type": "content_block_stop", "index": 0})
    );
    assert_eq!(
        frames[7].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null}, "usage": {"output_tokens": 3}})
    );
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn anthropic_whole_message() {
    let mock = fast_mock(None);
    let (status, headers, text) = post_to(&mock, "/v1/messages", messages_request(false)).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("request-id"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["type"], "text");
    assert_eq!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        3
    );
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn anthropic_rate_limit_and_invalid_requests_use_its_error_envelope() {
    let mock = fast_mock(Some(1));
    let (status, headers, _) = post_to(&mock, "/v1/messages", messages_request(false)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "1");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
    let reset = headers["anthropic-ratelimit-requests-reset"]
        .to_str()
        .unwrap();
    assert!(
        reset.ends_with('Z') && reset.contains('T'),
        "RFC 3339: {reset}"
    );
    let (status, headers, text) = post_to(&mock, "/v1/messages", messages_request(true)).await;
    assert_eq!(status, 429);
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 59
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["request_id"], headers["request-id"].to_str().unwrap());

    let (status, _, text) =
        post_to(&mock, "/v1/messages", json!({"model": "m", "messages": []})).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_a_413_in_each_envelope_and_models_are_listed() {
    let config = MockConfig {
        max_body_bytes: ByteCount(2_000),
        models: vec!["m-1".into(), "m-2".into()],
        ..MockConfig::default()
    };
    let mock = MockServer::start_local(config, 1).unwrap();
    let mut big = request(false, false);
    big["messages"][1]["content"] = json!("word ".repeat(1_000));
    let (status, _, text) = post(&mock, big).await;
    assert_eq!(status, 413);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let mut big = messages_request(false);
    big["messages"][0]["content"] = json!("word ".repeat(1_000));
    let (status, _, text) = post_to(&mock, "/v1/messages", big).await;
    assert_eq!(status, 413);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["type"], "request_too_large");

    let client = common::http();
    let openai: Value = client
        .get(format!("{}/v1/models", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][1]["id"], "m-2");
    let anthropic: Value = client
        .get(format!("{}/v1/models", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["last_id"], "m-2");
    let health = client
        .get(format!("{}/health", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

fn limited_mock(rate_limit: RateLimitConfig) -> MockServer {
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 0.0 }),
        rate_limit,
        ..MockConfig::default()
    };
    MockServer::start_local(config, 1).unwrap()
}

#[tokio::test]
async fn openai_tpm_is_charged_the_larger_of_prompt_and_max_tokens_per_key() {
    let mock = limited_mock(RateLimitConfig {
        tpm: Some(Count(1000)),
        retry_after_ms: true,
        ..RateLimitConfig::default()
    });
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 600});
    let (status, headers, _) = post_keyed(&mock, "/v1/chat/completions", "key-a", &body).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-limit-tokens"], "1000");
    assert_eq!(headers["x-ratelimit-remaining-tokens"], "400");
    assert_eq!(
        headers["x-ratelimit-reset-tokens"], "36s",
        "600 tokens at 1000/min"
    );
    assert!(
        !headers.contains_key("x-ratelimit-limit-requests"),
        "no RPM configured"
    );
    let (status, headers, error) = post_keyed(&mock, "/v1/chat/completions", "key-a", &body).await;
    assert_eq!(status, 429);
    assert_eq!(error["error"]["type"], "tokens");
    // "Used" shrinks with what refilled between the requests; the request is exact.
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Requested 600."),
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens per min (TPM): Limit 1000, Used "),
        "{error}"
    );
    // 200 tokens short at 1000/60 per second: 12 s, less what refilled between the two
    // requests (2 s allows for a heavily loaded machine).
    let ms: f64 = headers["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!(ms <= 12_000.0 && ms > 10_000.0, "{ms}");
    let seconds = (ms / 1000.0).ceil().to_string();
    assert_eq!(headers["retry-after"].to_str().unwrap(), seconds);
    let (status, _, _) = post_keyed(&mock, "/v1/chat/completions", "key-b", &body).await;
    assert_eq!(status, 200, "another key has its own bucket");
}

#[tokio::test]
async fn anthropic_token_headers_round_to_thousands_and_report_the_tightest_bucket() {
    let mock = limited_mock(RateLimitConfig {
        itpm: Some(Count(50_000)),
        otpm: Some(Count(8_000)),
        ..RateLimitConfig::default()
    });
    let body = json!({"model": "m", "max_tokens": 2500, "messages": [{"role": "user", "content": "one two three"}]});
    let (status, headers, _) = post_keyed(&mock, "/v1/messages", "k", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["anthropic-ratelimit-input-tokens-remaining"], "49000",
        "49997 rounded down"
    );
    assert_eq!(
        headers["anthropic-ratelimit-output-tokens-remaining"], "5000",
        "5500 rounded down"
    );
    assert_eq!(
        headers["anthropic-ratelimit-tokens-limit"], "8000",
        "output is the tighter bucket"
    );
    // Each reserves 2500 and generates all of it (no refund): 8000 → 5500 → 3000 → 500,
    // so the fourth does not fit.
    for _ in 0..2 {
        assert_eq!(post_keyed(&mock, "/v1/messages", "k", &body).await.0, 200);
    }
    let (status, headers, error) = post_keyed(&mock, "/v1/messages", "k", &body).await;
    assert_eq!(status, 429);
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("8000 output tokens per minute"),
        "{error}"
    );
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn an_exhausted_quota_says_not_to_retry() {
    let mock = limited_mock(RateLimitConfig {
        quota_requests: Some(Count(1)),
        ..RateLimitConfig::default()
    });
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "a"}], "max_tokens": 1});
    assert_eq!(
        post_keyed(&mock, "/v1/chat/completions", "k", &body)
            .await
            .0,
        200
    );
    let (status, headers, error) = post_keyed(&mock, "/v1/chat/completions", "k", &body).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-should-retry"], "false");
    assert_eq!(error["error"]["code"], "insufficient_quota");
}

#[tokio::test]
async fn metrics_count_requests_and_429s_by_dimension() {
    let mock = limited_mock(RateLimitConfig {
        rpm: Some(Count(1)),
        ..RateLimitConfig::default()
    });
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 3});
    for _ in 0..3 {
        post_keyed(&mock, "/v1/chat/completions", "k", &body).await;
    }
    let text = common::metrics_text(&mock.base_url()).await;
    for line in [
        "# TYPE llmbench_mock_requests_total counter",
        "llmbench_mock_requests_total 3",
        "llmbench_mock_admitted_total 1",
        "llmbench_mock_rate_limited_total{dimension=\"requests\"} 2",
        "llmbench_mock_rate_limited_total{dimension=\"tokens\"} 0",
        "llmbench_mock_output_tokens_total 3",
        "# TYPE llmbench_mock_queue_depth gauge",
        "# TYPE llmbench_mock_token_lateness_seconds summary",
        "llmbench_mock_queue_depth 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

/// One exchange of the transcript: what it sends, to which path, with which headers.
struct Exchange {
    label: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

/// Every API through every step that can answer: a stream, a whole response, each kind
/// of refusal, each fault that replaces a whole response. Deterministic on one mock
/// (seeded) sent one request at a time.
fn exchanges() -> Vec<Exchange> {
    let apis: [(&str, Value); 3] = [
        ("/v1/chat/completions", request(false, false)),
        ("/v1/completions", legacy_request(false, false)),
        ("/v1/messages", messages_request(false)),
    ];
    let mut out = Vec::new();
    let mut add = |label, path, headers: Vec<(&'static str, &'static str)>, body: String| {
        out.push(Exchange {
            label,
            path,
            headers,
            body,
        })
    };
    for (path, whole) in apis {
        let mut streamed = whole.clone();
        streamed["stream"] = json!(true);
        streamed["stream_options"] = json!({"include_usage": true});
        if path == "/v1/messages" {
            streamed.as_object_mut().unwrap().remove("stream_options");
        }
        let mut zero = whole.clone();
        zero["max_tokens"] = json!(0);
        let key = vec![("authorization", "Bearer transcript")];
        add("whole", path, key.clone(), whole.to_string());
        add("stream", path, key.clone(), streamed.to_string());
        add("not json", path, vec![], "{".into());
        add("zero max_tokens", path, vec![], zero.to_string());
        add("too large", path, vec![], "x".repeat(3_000));
        for fault in [
            "nonsense",
            "429",
            "500",
            "503",
            "529",
            "error-event",
            "malformed",
        ] {
            add(
                fault,
                path,
                vec![("x-llmbench-fault", fault)],
                whole.to_string(),
            );
        }
        add("rate limited", path, key.clone(), whole.to_string());
        add(
            "quota",
            path,
            vec![("authorization", "Bearer spent")],
            whole.to_string(),
        );
    }
    out
}

/// A response with what varies from run to run masked: the clock (`date`, `created`,
/// the time a bucket resets and what has refilled by then, waits, processing time).
async fn transcribe(mock: &MockServer, exchange: &Exchange) -> String {
    let (status, headers, text) =
        send(mock, exchange.path, &exchange.headers, &exchange.body).await;
    let mut out = format!("## {} {} -> {status}\n", exchange.path, exchange.label);
    for (name, value) in &headers {
        let name = name.as_str();
        // A wait's digits vary, and with them the length of the body naming it.
        let varies = ["date", "openai-processing-ms", "content-length"].contains(&name)
            || name.contains("reset")
            || name.contains("remaining");
        let value = if varies { "*" } else { value.to_str().unwrap() };
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push_str(&mask_created(&text));
    out.push('\n');
    out
}

/// `created` set to 0, and the wait a rate-limit message names starred.
fn mask_created(text: &str) -> String {
    let text = mask_after(text, "\"created\":", |rest| {
        rest.trim_start_matches(|c: char| c.is_ascii_digit())
    });
    mask_after(&text, "try again in ", |rest| {
        rest.find(".\"").map_or(rest, |end| &rest[end..])
    })
}

/// `text` with what follows each `marker` up to where `skip` leaves off starred.
fn mask_after(text: &str, marker: &str, skip: impl Fn(&str) -> &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        out.push('*');
        rest = skip(tail);
    }
    out.push_str(rest);
    out
}

/// The mock for one exchange: rate limits on every dimension (so every response carries
/// their headers); the refusals' exchanges are preceded by a request that spends the
/// requests-per-minute or the quota.
fn transcript_mock(label: &str) -> MockServer {
    let plenty = Some(Count(100_000));
    let rate_limit = RateLimitConfig {
        rpm: Some(Count(if label == "rate limited" { 1 } else { 100 })),
        tpm: plenty,
        itpm: plenty,
        otpm: plenty,
        quota_requests: (label == "quota").then_some(Count(1)),
        ..RateLimitConfig::default()
    };
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 0.0 }),
        max_body_bytes: ByteCount(2_000),
        rate_limit,
        ..MockConfig::default()
    };
    MockServer::start_local(config, 1).unwrap()
}

/// The mock's exact bytes for every API and step, against a recorded transcript
/// (`LLMBENCH_RECORD_TRANSCRIPT=1` rewrites it).
#[tokio::test]
async fn every_api_answers_every_step_as_recorded() {
    let mut transcript = String::new();
    for exchange in exchanges() {
        // A fresh mock per exchange: ids and buckets start from the same state.
        let mock = transcript_mock(exchange.label);
        if ["rate limited", "quota"].contains(&exchange.label) {
            send(&mock, exchange.path, &exchange.headers, &exchange.body).await;
        }
        transcript.push_str(&transcribe(&mock, &exchange).await);
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mock_transcript.txt"
    );
    if std::env::var_os("LLMBENCH_RECORD_TRANSCRIPT").is_some() {
        std::fs::write(path, &transcript).unwrap();
    }
    let recorded = std::fs::read_to_string(path).unwrap();
    for (got, want) in transcript.lines().zip(recorded.lines()) {
        assert_eq!(got, want);
    }
    assert_eq!(transcript.lines().count(), recorded.lines().count());
}

#[tokio::test]
async fn anthropic_refunds_the_unused_part_of_an_output_reservation() {
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 0.0 }),
        output_tokens: Some(TokenDistribution(Distribution::Constant { value: 10.0 })),
        rate_limit: RateLimitConfig {
            otpm: Some(Count(2_000)),
            ..RateLimitConfig::default()
        },
        ..MockConfig::default()
    };
    let mock = MockServer::start_local(config, 1).unwrap();
    let mut body = messages_request(false);
    body["max_tokens"] = json!(600);
    let remaining = "anthropic-ratelimit-output-tokens-remaining";
    let (_, headers, _) = post_keyed(&mock, "/v1/messages", "k", &body).await;
    assert_eq!(headers[remaining], "1000", "1400 left, in thousands");
    // 590 of the 600 reserved refunded: 1390 left; unrefunded, 800 would be.
    let (_, headers, _) = post_keyed(&mock, "/v1/messages", "k", &body).await;
    assert_eq!(headers[remaining], "1000");
}
