//! The mock as the providers behave at the edges of their APIs: prompt caching (usage,
//! time to first token, Anthropic's input-token limit), the Responses API through the
//! client, the request shapes real tools send, and vLLM's metric names.

mod common;

use llmbench::mock::MockServer;
use llmbench::scenario::{
    CacheConfig, CacheMode, Count, Distribution, MillisDistribution, MockConfig, RateLimitConfig,
    Scenario, Seconds, Share, TokenCount,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn cache(mode: CacheMode, hit_rate: f64) -> CacheConfig {
    CacheConfig {
        mode,
        hit_rate: Share(hit_rate),
        min_tokens: TokenCount(1024),
        ttl_s: Seconds(300.0),
        max_entries: Count(1000),
        ttft_saving: Share(0.8),
    }
}

fn mock(ttft_ms: f64, cache: Option<CacheConfig>, rate_limit: RateLimitConfig) -> MockServer {
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: ttft_ms }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        cache,
        rate_limit,
        ..MockConfig::default()
    };
    MockServer::start_local(config, 1).expect("mock starts")
}

/// POSTs `body` to `path` as `key`; the status, the body as JSON (null if it is not),
/// and when the first body bytes arrived after the request was sent.
async fn post(mock: &MockServer, path: &str, key: &str, body: &Value) -> (u16, Value, Duration) {
    let sent = Instant::now();
    let mut response = common::http()
        .post(format!("{}{path}", mock.base_url()))
        .header("authorization", format!("Bearer {key}"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("mock answers");
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    let mut first = None;
    while let Some(chunk) = response.chunk().await.unwrap() {
        first.get_or_insert_with(|| sent.elapsed());
        bytes.extend_from_slice(&chunk);
    }
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json, first.unwrap_or_default())
}

/// The `data:` payloads of an SSE body, as JSON.
fn frames(body: &Value) -> Vec<Value> {
    body.as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

fn words(n: usize, word: &str) -> String {
    vec![word; n].join(" ")
}

#[tokio::test]
async fn a_repeated_prefix_is_read_from_cache_and_answers_sooner() {
    // 1 s to the first token uncached; a prompt of 1,100 words shares 1,024 tokens
    // (eight 128-token blocks) with the next, which then starts 0.8 × 1024/1100 sooner:
    // at about 255 ms. The margin is wide and the fastest of three warm requests
    // counts, since a loaded machine may stall any one of them.
    let mock = mock(
        1000.0,
        Some(cache(CacheMode::Prefix, 0.0)),
        RateLimitConfig::default(),
    );
    let shared = words(1050, "context");
    let ask = |item: &str| {
        json!({"model": "m", "max_tokens": 2, "stream": true,
               "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": format!("{shared} {item} {}", words(49, "x"))}]})
    };
    let usage = |body: &Value| frames(body).last().unwrap()["usage"].clone();
    let (_, first, cold) = post(&mock, "/v1/chat/completions", "k", &ask("item-1")).await;
    assert_eq!(usage(&first)["prompt_tokens_details"]["cached_tokens"], 0);
    assert!(cold >= Duration::from_millis(995), "{cold:?}");
    let mut fastest = Duration::MAX;
    for item in ["item-2", "item-3", "item-4"] {
        let (_, body, warm) = post(&mock, "/v1/chat/completions", "k", &ask(item)).await;
        assert_eq!(usage(&body)["prompt_tokens"], 1100);
        assert_eq!(usage(&body)["prompt_tokens_details"]["cached_tokens"], 1024);
        fastest = fastest.min(warm);
    }
    assert!(fastest < Duration::from_millis(600), "{fastest:?}");

    // Whole responses report it too, and another prompt shares nothing.
    let whole = json!({"model": "m", "max_tokens": 2,
                       "messages": [{"role": "user", "content": format!("{shared} item-5")}]});
    let (_, body, _) = post(&mock, "/v1/chat/completions", "k", &whole).await;
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1024
    );
    let other = json!({"model": "m", "max_tokens": 2,
                       "messages": [{"role": "user", "content": words(1100, "other")}]});
    let (_, body, _) = post(&mock, "/v1/chat/completions", "k", &other).await;
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

/// llmbench's Anthropic client marks the workload's shared prefix with `cache_control`
/// (Anthropic caches only what is marked): against a mock caching real prefixes, the
/// first request's prefix is cached, every later one reads its 1,100 tokens, each record
/// says how much, and the table shows the hit rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_client_marks_the_shared_prefix_and_reads_it_back() {
    let mock = mock(
        2.0,
        Some(cache(CacheMode::Prefix, 0.0)),
        RateLimitConfig::default(),
    );
    let src = format!(
        "name = \"a\"\n[target]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
         [workload]\nrequests = 4\nmax_tokens = 2\nprompt_tokens = 1300\nshared_prefix_tokens = 1100\n\
         [[strategy]]\nkind = \"serial\"\n",
        mock.base_url()
    );
    let run = common::run(&src).await;
    let s = &run.strategies[0];
    let cached: Vec<u32> = run.records_of(s).iter().map(|r| r.cached_tokens).collect();
    assert_eq!(cached, [0, 1100, 1100, 1100]);
    let summary = llmbench::summary::StrategySummary::from_result(s);
    let table = llmbench::report::table::ResultTable::new(&[summary]).to_markdown();
    // Three of four requests hit; 3 × 1,100 of 4 × 1,300 prompt tokens were read.
    let row = table.lines().find(|l| l.contains("prompt cache hit rate"));
    assert!(
        row.is_some_and(|r| r.contains("| 75 % (63 % of prompt tokens) |")),
        "{table}"
    );
}

/// Under a capacity model only the uncached part of a prompt is prefilled: 1 ms a token,
/// 1,100 tokens cold, 76 past the 1,024 read from cache.
#[tokio::test]
async fn a_cached_prefix_is_not_prefilled_again() {
    let src = "name = \"m\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 1\nitl_ms = 1\n\
               capacity = { max_concurrent = 4, prefill_us_per_token = 1000 }\n\
               cache = { mode = \"prefix\", min_tokens = 1024 }\n\
               [workload]\nrequests = 1\n[[strategy]]\nkind = \"serial\"\n";
    let config = Scenario::parse(src, "m.toml").unwrap().mock;
    let mock = MockServer::start_local(config, 1).unwrap();
    let shared = words(1050, "context");
    let ask = |item: &str| {
        json!({"model": "m", "max_tokens": 2, "stream": true,
               "messages": [{"role": "user", "content": format!("{shared} {item} {}", words(49, "x"))}]})
    };
    let (_, _, cold) = post(&mock, "/v1/chat/completions", "k", &ask("item-1")).await;
    assert!(cold >= Duration::from_millis(1095), "{cold:?}");
    // The fastest of three, with a wide margin: a loaded machine may stall any one.
    let mut fastest = Duration::MAX;
    for item in ["item-2", "item-3", "item-4"] {
        fastest = fastest.min(post(&mock, "/v1/chat/completions", "k", &ask(item)).await.2);
    }
    assert!(fastest < Duration::from_millis(600), "{fastest:?}");
}

#[tokio::test]
async fn anthropic_cache_reads_are_not_charged_to_input_tokens_per_minute() {
    // 3,000 input tokens a minute and prompts of 2,010: unmarked, the second is refused;
    // with the 2,000-token system prompt marked and read from cache (hit_rate 1), each
    // is charged its 10 uncached tokens and all five pass.
    let limits = RateLimitConfig {
        itpm: Some(Count(3000)),
        ..RateLimitConfig::default()
    };
    let mock = mock(1.0, Some(cache(CacheMode::HitRate, 1.0)), limits);
    let request = |marked: bool| {
        let mut system = json!({"type": "text", "text": words(2000, "policy")});
        if marked {
            system["cache_control"] = json!({"type": "ephemeral"});
        }
        json!({"model": "claude", "max_tokens": 1, "system": [system],
               "messages": [{"role": "user", "content": [{"type": "text", "text": words(10, "ask")}]}]})
    };
    for _ in 0..5 {
        let (status, body, _) = post(&mock, "/v1/messages", "cached", &request(true)).await;
        assert_eq!(status, 200, "{body}");
        let usage = &body["usage"];
        assert_eq!(
            (
                usage["input_tokens"].as_u64(),
                usage["cache_read_input_tokens"].as_u64()
            ),
            (Some(10), Some(2000))
        );
        assert_eq!(usage["cache_creation_input_tokens"], 0);
    }
    assert_eq!(
        post(&mock, "/v1/messages", "plain", &request(false))
            .await
            .0,
        200
    );
    let (status, body, _) = post(&mock, "/v1/messages", "plain", &request(false)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    // A miss writes the marked prefix: cache_creation_input_tokens, uncounted as input.
    let missing = mock_with_misses();
    let (_, body, _) = post(&missing, "/v1/messages", "k", &request(true)).await;
    let usage = &body["usage"];
    assert_eq!(
        (
            usage["input_tokens"].as_u64(),
            usage["cache_creation_input_tokens"].as_u64()
        ),
        (Some(10), Some(2000))
    );
}

fn mock_with_misses() -> MockServer {
    mock(
        1.0,
        Some(cache(CacheMode::HitRate, 0.0)),
        RateLimitConfig::default(),
    )
}

/// Every injected fault reads the same on every API as on chat (tested on every runtime
/// and client in `runtimes.rs`): the Responses API and the legacy endpoint through the
/// embedded mock, Anthropic's Messages through a standalone one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_classifies_every_fault_as_chat_does() {
    use llmbench::recorder::Outcome;
    for (fault, class) in common::FAULT_CLASSES {
        let mock =
            format!("[mock]\nttft_ms = 2\nitl_ms = 1\nfaults = {{ {fault} = 1.0, stall_s = 3 }}\n");
        // A second without a byte is a stall (the stall fault holds 3 s): wide enough
        // that a loaded machine's pause does not make another fault read as one.
        let work = "[client]\nidle_timeout_s = 1\n[workload]\nrequests = 2\nmax_tokens = 4\n\
                    [[strategy]]\nkind = \"semaphore\"\nlimit = 2\n";
        let config = Scenario::parse(
            &format!("name = \"m\"\n[target]\nkind = \"mock\"\n{mock}{work}"),
            "m",
        )
        .unwrap()
        .mock;
        let standalone = MockServer::start_local(config, 0).unwrap();
        let anthropic = format!(
            "kind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
            standalone.base_url()
        );
        // A live target's scenario has no [mock]: the standalone one was given it.
        let targets = [
            format!("kind = \"mock\"\napi = \"responses\"\n{mock}"),
            format!("kind = \"mock\"\napi = \"completions\"\n{mock}"),
            anthropic,
        ];
        for target in targets {
            let src = format!("name = \"f\"\n[target]\n{target}{work}");
            let run = common::run(&src).await;
            let records = run.records_of(&run.strategies[0]);
            let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
            assert_eq!(
                outcomes,
                vec![Outcome::Failed(class); 2],
                "{fault} on {target}: {:?}",
                records[0].error
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_api_through_the_client_counts_exactly() {
    for stream in [true, false] {
        let src = format!(
            r#"
name = "responses"
[target]
kind = "mock"
api = "responses"
[mock]
ttft_ms = 2
itl_ms = 1
rate_limit = {{ rpm = 6 }}
cache = {{ hit_rate = 1.0, min_tokens = 128 }}
[workload]
requests = 8
max_tokens = 7
prompt_tokens = 300
shared_prefix_tokens = 200
stream = {stream}
[[strategy]]
kind = "join_all"
"#
        );
        let run = common::run(&src).await;
        let s = &run.strategies[0];
        let counts = s.counts();
        // The limit applies as on the other APIs: 6 of the 8 pass.
        assert_eq!((counts.ok, counts.rate_limited), (6, 2), "stream {stream}");
        assert_eq!(s.output_tokens(), 42);
        let mock = s.mock.unwrap();
        assert_eq!((mock.admitted, mock.output_tokens_sent), (6, 42));
        // Every prompt is cached in whole 128-token blocks: 256 of its 300 tokens.
        for r in run.records_of(s).iter().filter(|r| r.is_ok()) {
            assert_eq!(
                (r.output_tokens, r.cached_tokens),
                (7, 256),
                "stream {stream}"
            );
            assert!(!r.tokens_counted);
            assert_eq!(r.content_chunks, if stream { 7 } else { 0 });
        }
        let summary = llmbench::summary::StrategySummary::from_result(s);
        let hits = summary.prompt_cache.unwrap();
        assert_eq!((hits.requests_hit, hits.hit_rate), (6, 1.0));
    }
}

#[tokio::test]
async fn the_request_shapes_real_tools_send_are_accepted() {
    let mock = mock(1.0, None, RateLimitConfig::default());
    let chat = "/v1/chat/completions";
    // GuideLLM and vLLM's benchmark: content as a list of text parts, vLLM extensions.
    let guidellm = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "max_completion_tokens": 3, "ignore_eos": true, "min_tokens": 3, "temperature": 0.0,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]});
    let (status, body, _) = post(&mock, chat, "k", &guidellm).await;
    assert_eq!(status, 200);
    let usage = frames(&body).last().unwrap()["usage"].clone();
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(3), Some(3))
    );

    // LangChain-style: system and developer roles, an image part (85 tokens), a tool
    // call with null content and its result, tools, tool_choice, response_format, stop.
    let langchain = json!({"model": "m", "max_tokens": 2, "stop": ["\n\n"], "seed": 1,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": "one two"},
            {"role": "developer", "content": [{"type": "text", "text": "three"}]},
            {"role": "user", "content": [{"type": "text", "text": "four five"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
            {"role": "assistant", "content": null,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "six"}]});
    let (status, body, _) = post(&mock, chat, "k", &langchain).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["prompt_tokens"], 6 + 85);

    // Above 8 choices, OpenAI's own 400 (choices themselves: `n_choices_…` below).
    let n = json!({"model": "m", "max_tokens": 4, "n": 9,
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, body, _) = post(&mock, chat, "k", &n).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid 'n'"),
        "{body}"
    );

    // Anthropic: system as a list of blocks, an image, tool use and its result, tools.
    let anthropic = json!({"model": "claude", "max_tokens": 2, "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "one two", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "three"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]});
    let (status, body, _) = post(&mock, "/v1/messages", "k", &anthropic).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["input_tokens"], 3 + 85);

    // Responses: instructions, and input items with parts.
    let responses = json!({"model": "m", "instructions": "be brief", "max_output_tokens": 3,
        "text": {"format": {"type": "text"}}, "tools": [],
        "input": [{"role": "developer", "content": "one"},
                  {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two three"}]}]});
    let (status, body, _) = post(&mock, "/v1/responses", "k", &responses).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "response");
    assert_eq!(
        (
            body["status"].as_str(),
            body["incomplete_details"]["reason"].as_str()
        ),
        (Some("incomplete"), Some("max_output_tokens"))
    );
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 3);
    assert_eq!(
        body["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        3
    );
}

#[tokio::test]
async fn metrics_carry_vllm_names() {
    let mock = mock(1.0, None, RateLimitConfig::default());
    let stream = json!({"model": "m", "max_tokens": 5, "stream": true,
                        "messages": [{"role": "user", "content": "one two three"}]});
    for _ in 0..2 {
        assert_eq!(
            post(&mock, "/v1/chat/completions", "k", &stream).await.0,
            200
        );
    }
    let text = common::metrics_text(&mock.base_url()).await;
    let label = "{model_name=\"llmbench-mock\"}";
    for line in [
        format!("vllm:num_requests_running{label} 0"),
        format!("vllm:num_requests_waiting{label} 0"),
        format!("vllm:kv_cache_usage_perc{label} 0"),
        format!("vllm:prompt_tokens_total{label} 6"),
        format!("vllm:generation_tokens_total{label} 10"),
        format!("vllm:time_to_first_token_seconds_count{label} 2"),
        format!("vllm:inter_token_latency_seconds_count{label} 8"),
        format!("vllm:e2e_request_latency_seconds_count{label} 2"),
        "vllm:inter_token_latency_seconds_bucket{model_name=\"llmbench-mock\",le=\"+Inf\"} 8"
            .into(),
        "# TYPE vllm:time_to_first_token_seconds histogram".into(),
        "llmbench_mock_output_tokens_total 10".into(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
}

/// With a capacity model the vLLM gauges read it: requests holding a decode slot, those
/// queued for one, and the share of slots in use (the KV-cache proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vllm_gauges_read_the_capacity_model() {
    let src = "name = \"m\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 5\nitl_ms = 100\n\
               capacity = { max_concurrent = 2, queue = 4 }\n[workload]\nrequests = 1\n\
               [[strategy]]\nkind = \"serial\"\n";
    let config = Scenario::parse(src, "m.toml").unwrap().mock;
    let mock = std::sync::Arc::new(MockServer::start_local(config, 1).unwrap());
    let gauges = |mock: std::sync::Arc<MockServer>| async move {
        let text = common::metrics_text(&mock.base_url()).await;
        let value = |name: &str| {
            let prefix = format!("vllm:{name}{{model_name=");
            let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
            line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
        };
        [
            value("num_requests_running"),
            value("num_requests_waiting"),
            value("kv_cache_usage_perc"),
        ]
    };
    // Three streams of 10 tokens 100 ms apart (about a second each) on two slots.
    let request = json!({"model": "m", "max_tokens": 10, "stream": true,
                         "messages": [{"role": "user", "content": "one two three"}]});
    let streams: Vec<_> = (0..3)
        .map(|i| {
            let (mock, request) = (mock.clone(), request.clone());
            tokio::spawn(async move {
                post(&mock, "/v1/chat/completions", &format!("k{i}"), &request)
                    .await
                    .0
            })
        })
        .collect();
    // Bounded: the three are admitted within a few milliseconds; two seconds at most.
    let mut seen = gauges(mock.clone()).await;
    for _ in 0..200 {
        if seen[0] + seen[1] == 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = gauges(mock.clone()).await;
    }
    assert_eq!(seen, [2.0, 1.0, 1.0], "running, waiting, usage");
    for stream in streams {
        assert_eq!(stream.await.unwrap(), 200);
    }
    assert_eq!(gauges(mock.clone()).await, [0.0, 0.0, 0.0]);
}

/// The choices of one response, by index: text and finish reason, whole or streamed.
fn choices_of(body: &Value) -> Vec<(String, String)> {
    let mut choices: Vec<(String, String)> = Vec::new();
    let mut add = |choice: &Value, text: &Value| {
        let i = choice["index"].as_u64().unwrap() as usize;
        if choices.len() <= i {
            choices.resize(i + 1, Default::default());
        }
        choices[i].0.push_str(text.as_str().unwrap_or_default());
        if let Some(reason) = choice["finish_reason"].as_str() {
            choices[i].1 = reason.to_string();
        }
    };
    match body["choices"].as_array() {
        Some(whole) => whole.iter().for_each(|c| add(c, &c["message"]["content"])),
        None => frames(body)
            .iter()
            .flat_map(|f| f["choices"].as_array().cloned().unwrap_or_default())
            .for_each(|c| add(&c, &c["delta"]["content"])),
    }
    choices
}

#[tokio::test]
async fn n_choices_are_sampled_each_on_its_own_and_usage_sums_them() {
    let config = MockConfig {
        ttft_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        itl_ms: MillisDistribution(Distribution::Constant { value: 1.0 }),
        output_tokens: Some(llmbench::scenario::TokenDistribution(
            Distribution::Uniform {
                min: 2.0,
                max: 30.0,
            },
        )),
        ..MockConfig::default()
    };
    let mock = MockServer::start_local(config, 1).expect("mock starts");
    let client = llmbench::client::OpenAiChat {
        model: "m".into(),
        exact_length: false,
    };
    for stream in [false, true] {
        let request = json!({"model": "m", "max_tokens": 20, "n": 3, "stream": stream,
            "stream_options": {"include_usage": stream},
            "messages": [{"role": "user", "content": "three ways to say it"}]});
        let (status, body, _) = post(&mock, "/v1/chat/completions", "k", &request).await;
        assert_eq!(status, 200, "{body}");
        let choices = choices_of(&body);
        assert_eq!(choices.len(), 3, "indices 0..2 (stream {stream})");
        let lengths: Vec<u64> = choices
            .iter()
            .map(|(text, _)| text.split_whitespace().count() as u64)
            .collect();
        for (text, reason) in &choices {
            let length = text.split_whitespace().count();
            assert!((1..=20).contains(&length), "{text:?}");
            assert_eq!(reason, if length == 20 { "length" } else { "stop" });
        }
        let texts: std::collections::HashSet<&String> = choices.iter().map(|c| &c.0).collect();
        assert_eq!(texts.len(), 3, "each choice its own text: {choices:?}");
        let usage = match stream {
            false => body["usage"].clone(),
            true => frames(&body).last().unwrap()["usage"].clone(),
        };
        assert_eq!(usage["completion_tokens"], lengths.iter().sum::<u64>());
        if stream {
            // Each choice's finish_reason comes in the chunk right after its last token,
            // as OpenAI sends it, not all at the end.
            let per_choice: Vec<(u64, bool)> = frames(&body)
                .iter()
                .filter_map(|f| f["choices"].get(0).cloned())
                .map(|c| (c["index"].as_u64().unwrap(), c["finish_reason"].is_string()))
                .collect();
            for (i, &length) in lengths.iter().enumerate() {
                let own: Vec<usize> = (0..per_choice.len())
                    .filter(|&k| per_choice[k].0 == i as u64)
                    .collect();
                let finish = own.iter().position(|&k| per_choice[k].1).unwrap();
                assert_eq!(
                    finish,
                    own.len() - 1,
                    "choice {i}'s finish chunk is its last"
                );
                // Its start chunk, its tokens, then at once its finish.
                let (last_token, finished) = (own[finish - 1], own[finish]);
                assert_eq!(finished, last_token + 1, "choice {i} ({length} tokens)");
            }
            // Without usage, the client counts every choice's chunks: the same sum.
            use llmbench::client::WireAdapter;
            let counted: u32 = body
                .as_str()
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|data| {
                    let event = llmbench::wire::sse::SseEvent {
                        event: "message",
                        data,
                    };
                    client.stream_event(event).unwrap().content_chunks
                })
                .sum();
            assert_eq!(u64::from(counted), lengths.iter().sum::<u64>());
        }
    }
    // The most the mock serves: 8 choices, each with its index (9 is refused with
    // OpenAI's envelope: `mock_wire.rs`).
    for stream in [false, true] {
        let request = json!({"model": "m", "max_tokens": 4, "n": 8, "stream": stream,
            "messages": [{"role": "user", "content": "eight"}]});
        let (status, body, _) = post(&mock, "/v1/chat/completions", "k", &request).await;
        assert_eq!(status, 200, "{body}");
        let choices = choices_of(&body);
        assert_eq!(choices.len(), 8, "indices 0..7 (stream {stream})");
        assert!(
            choices.iter().all(|(_, reason)| !reason.is_empty()),
            "every index finished: {choices:?}"
        );
    }
}
