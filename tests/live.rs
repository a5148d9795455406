//! Live target kinds, tested only against servers on this machine: `llmbench mock`, and
//! wiremock replaying provider-shaped responses. No test calls a real provider.

mod common;

use llmbench::mock::MockServer;
use llmbench::recorder::{ErrorClass, Outcome};
use llmbench::scenario::Scenario;
use std::process::Command;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer as WireMock, ResponseTemplate};

const MOCK: &str = r#"
[mock]
ttft_ms = 3
itl_ms = 1
output_tokens = { dist = "uniform", min = 1, max = 12 }
rate_limit = { rpm = 10 }
"#;

const WORK: &str = r#"
[workload]
requests = 14
seed = 5
max_tokens = { dist = "uniform", min = 2, max = 10 }
[[strategy]]
kind = "serial"
[[strategy]]
kind = "join_all"
"#;

/// (ok, 429, output tokens) per strategy. Output tokens only for serial: under
/// join_all, which 10 of the 14 concurrent requests the bucket admits varies by run.
fn counts(run: &llmbench::result::RunResult) -> Vec<(u64, u64, Option<u64>)> {
    run.strategies
        .iter()
        .map(|s| {
            let c = s.counts();
            let tokens = (s.label == "serial").then(|| s.output_tokens());
            (c.ok, c.rate_limited, tokens)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_kinds_against_the_mock_count_what_the_embedded_mock_counts() {
    let embedded = common::run(&format!(
        "name = \"e\"\n[target]\nkind = \"mock\"\n{MOCK}{WORK}"
    ))
    .await;
    let expected = counts(&embedded);
    assert_eq!(expected[0].0, 10, "the 10 RPM bucket admits 10 of 14");

    let config = Scenario::parse(
        &format!("name = \"m\"\n[target]\nkind = \"mock\"\n{MOCK}{WORK}"),
        "m",
    )
    .unwrap()
    .mock;
    // The embedded mock's other OpenAI endpoints, streamed and whole.
    let embedded_api = |api: &str, stream: bool| {
        let work = WORK.replace("seed = 5", &format!("seed = 5\nstream = {stream}"));
        format!("name = \"e\"\n[target]\nkind = \"mock\"\napi = \"{api}\"\n{MOCK}{work}")
    };
    for (api, stream) in [
        ("completions", true),
        ("responses", true),
        ("chat", false),
        ("completions", false),
        ("responses", false),
    ] {
        let run = common::run(&embedded_api(api, stream)).await;
        assert_eq!(counts(&run), expected, "{api}, stream = {stream}");
    }

    for (kind, api) in [
        ("openai", "chat"),
        ("openai", "completions"),
        ("openai", "responses"),
        ("anthropic", ""),
    ] {
        // A standalone mock with the same configuration and seed, reset per strategy as
        // the embedded one is: here by a fresh server per strategy.
        let mut live = Vec::new();
        for strategy in ["serial", "join_all"] {
            let mock = MockServer::start_local(config.clone(), 5).unwrap();
            let work = WORK.split("[[strategy]]").next().unwrap();
            let api = if api.is_empty() {
                String::new()
            } else {
                format!("api = \"{api}\"\n")
            };
            let src = format!(
                "name = \"l\"\n[target]\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"m\"\n{api}{work}[[strategy]]\nkind = \"{strategy}\"\n",
                mock.base_url()
            );
            live.extend(counts(&common::run(&src).await.result));
        }
        assert_eq!(live, expected, "{kind} {api}");
    }
}

/// One live run of `kind` against wiremock answering `response`; the records' outcomes
/// and error messages.
async fn against(
    kind: &str,
    stream: bool,
    response: ResponseTemplate,
) -> Vec<(Outcome, Option<String>)> {
    let server = WireMock::start().await;
    let route = if kind == "openai" {
        "/v1/chat/completions"
    } else {
        "/v1/messages"
    };
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(&server)
        .await;
    let src = format!(
        "name = \"w\"\n[target]\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
         [workload]\nrequests = 2\nstream = {stream}\nmax_tokens = 3\n[[strategy]]\nkind = \"serial\"\n",
        server.uri()
    );
    let run = common::run(&src).await;
    run.records_of(&run.strategies[0])
        .iter()
        .map(|r| (r.outcome, r.error.clone()))
        .collect()
}

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_string(body)
}

const OPENAI_STREAM: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n\
data: [DONE]\n\n";

const ANTHROPIC_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_shaped_successes_are_read() {
    let ok = [(Outcome::Ok, None), (Outcome::Ok, None)];
    assert_eq!(against("openai", true, sse(OPENAI_STREAM)).await, ok);
    assert_eq!(against("anthropic", true, sse(ANTHROPIC_STREAM)).await, ok);
    let whole = serde_json::json!({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}});
    assert_eq!(
        against(
            "openai",
            false,
            ResponseTemplate::new(200).set_body_json(whole)
        )
        .await,
        ok
    );
    let message = serde_json::json!({"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}});
    assert_eq!(
        against(
            "anthropic",
            false,
            ResponseTemplate::new(200).set_body_json(message)
        )
        .await,
        ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_shaped_failures_are_classified_with_the_servers_message() {
    for kind in ["openai", "anthropic"] {
        let limited = ResponseTemplate::new(429)
            .insert_header("retry-after", "20")
            .set_body_string(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#);
        let (outcome, message) = against(kind, true, limited).await.remove(0);
        assert_eq!(outcome, Outcome::Failed(ErrorClass::RateLimited), "{kind}");
        assert!(
            message
                .unwrap()
                .starts_with("HTTP 429: {\"error\":{\"message\":\"Rate limit reached\"")
        );

        let unauthorized = ResponseTemplate::new(401)
            .set_body_string(r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#);
        let (outcome, message) = against(kind, true, unauthorized).await.remove(0);
        assert_eq!(outcome, Outcome::Failed(ErrorClass::ClientError));
        assert!(message.unwrap().contains("invalid x-api-key"));

        let html = format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "x".repeat(500)
        );
        let page = ResponseTemplate::new(500)
            .insert_header("content-type", "text/html")
            .set_body_string(html);
        let (outcome, message) = against(kind, true, page).await.remove(0);
        assert_eq!(outcome, Outcome::Failed(ErrorClass::ServerError));
        let message = message.unwrap();
        assert!(
            message.starts_with("HTTP 500: <html><head><title>502 Bad Gateway"),
            "{message}"
        );
        assert!(
            message.len() <= "HTTP 500: ".len() + 200,
            "the first 200 bytes only"
        );
    }
    let cut = &OPENAI_STREAM[..OPENAI_STREAM.find("data: [DONE]").unwrap()];
    let (outcome, message) = against("openai", true, sse(cut)).await.remove(0);
    assert_eq!(outcome, Outcome::Failed(ErrorClass::Protocol));
    assert_eq!(message.unwrap(), "stream ended without its end marker");
    let cut = &ANTHROPIC_STREAM[..ANTHROPIC_STREAM.find("event: message_delta").unwrap() + 30];
    let (outcome, message) = against("anthropic", true, sse(cut)).await.remove(0);
    assert_eq!(outcome, Outcome::Failed(ErrorClass::Protocol));
    assert_eq!(message.unwrap(), "stream ended inside an event");
}

use common::llmbench;

#[test]
fn a_remote_target_needs_yes_and_dry_run_only_plans() {
    // `.invalid` never resolves: even a bug here could not send a request anywhere.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("remote.toml");
    std::fs::write(
        &file,
        "name = \"remote\"\n[target]\nkind = \"openai\"\nbase_url = \"https://api.llmbench.invalid/v1\"\nmodel = \"gpt\"\n\
         price = { input_per_million = 1.0, output_per_million = 4.0 }\n\
         [workload]\nrequests = 100\nprompt_tokens = 1000\nmax_tokens = 500\n[[strategy]]\nkind = \"serial\"\n[[strategy]]\nkind = \"join_all\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = llmbench(
        &[
            "run",
            file.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("requests:       200 (2 strategies, before retries)"),
        "{err}"
    );
    assert!(
        err.contains("cost:           at most $0.6000"),
        "200 × (1000 × $1 + 500 × $4) / 1M: {err}"
    );
    assert!(err.contains("run again with --yes"), "{err}");
    assert!(!out_dir.exists(), "nothing was run");

    let out = llmbench(&["run", file.to_str().unwrap(), "--dry-run"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("target:         https://api.llmbench.invalid")
    );
}

#[test]
fn a_missing_key_fails_before_any_traffic_and_a_given_key_is_never_written() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut mock = Stopped(
        Command::new(env!("CARGO_BIN_EXE_llmbench"))
            .args(["mock", "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    let mut mock_out = BufReader::new(mock.0.stdout.take().unwrap());
    mock_out.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("llmbench mock listening on ")
        .unwrap()
        .to_string();
    let file = dir.path().join("keyed.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"keyed\"\n[target]\nkind = \"openai\"\nbase_url = \"{url}\"\nmodel = \"m\"\napi_key_env = \"LLMBENCH_TEST_KEY\"\n\
             [workload]\nrequests = 3\nmax_tokens = 2\n[[strategy]]\nkind = \"serial\"\n"
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "run",
        file.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "-q",
    ];
    let out = llmbench(&args, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("LLMBENCH_TEST_KEY (named by target.api_key_env) is not set")
    );
    assert!(!out_dir.exists());

    let key = "sk-llmbench-test-4f1c9e0b7a2d";
    let out = llmbench(&args, &[("LLMBENCH_TEST_KEY", key)]);
    drop(mock);
    drop(mock_out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(key)
            && !String::from_utf8_lossy(&out.stderr).contains(key)
    );
    common::assert_written_nowhere(&out_dir, key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_headers_are_sent_and_those_from_the_environment_never_written() {
    use wiremock::matchers::header;
    let secret = "azure-key-llmbench-9d2e61";
    let server = WireMock::start().await;
    // Answers only requests carrying both headers; anything else gets a 404.
    Mock::given(method("POST"))
        .and(header("openai-organization", "org-7"))
        .and(header("api-key", secret))
        .respond_with(sse(OPENAI_STREAM))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("headers.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"h\"\n[target]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
             headers = {{ OpenAI-Organization = \"org-7\", api-key = {{ env = \"LLMBENCH_TEST_HEADER\" }} }}\n\
             [workload]\nrequests = 2\nmax_tokens = 3\n[[strategy]]\nkind = \"serial\"\n",
            server.uri()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "run".to_string(),
        file.display().to_string(),
        "-o".into(),
        out_dir.display().to_string(),
        "-q".into(),
    ];
    let run = |env: &'static [(&'static str, &'static str)]| {
        let args = args.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            llmbench(&args, env)
        })
    };
    let out = run(&[]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("LLMBENCH_TEST_HEADER (named by target.headers.api-key) is not set")
    );
    let out = run(&[("LLMBENCH_TEST_HEADER", "azure-key-llmbench-9d2e61")])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains(secret) && !String::from_utf8_lossy(&out.stderr).contains(secret));
    let summary = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary = std::fs::read_to_string(summary.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"ok\": 2"),
        "both requests answered: {summary}"
    );
    common::assert_written_nowhere(&out_dir, secret);
}

/// A child process killed and reaped when dropped, even if the test fails first.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_say_where_they_came_from_and_ignore_eos_is_sent() {
    use wiremock::matchers::body_partial_json;
    let server = WireMock::start().await;
    let without_usage: String = OPENAI_STREAM
        .split("\n\n")
        .filter(|frame| !frame.is_empty() && !frame.contains("\"usage\""))
        .map(|frame| format!("{frame}\n\n"))
        .collect();
    // Answers only requests carrying both vLLM extensions; anything else gets a 404.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(
            serde_json::json!({"ignore_eos": true, "min_tokens": 3}),
        ))
        .respond_with(sse(&without_usage))
        .mount(&server)
        .await;
    let src = format!(
        "name = \"w\"\n[target]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\nignore_eos = true\n\
         [workload]\nrequests = 1\nmax_tokens = 3\n[[strategy]]\nkind = \"serial\"\n",
        server.uri()
    );
    let run = common::run(&src).await;
    let record = &run.records_of(&run.strategies[0])[0];
    assert_eq!(record.outcome, Outcome::Ok, "{:?}", record.error);
    assert!(
        record.tokens_counted,
        "no usage chunk: counted from the stream"
    );
    assert_eq!(record.output_tokens, 2, "two content chunks");

    let server = WireMock::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(OPENAI_STREAM))
        .mount(&server)
        .await;
    let src = src.replace(&run_uri(&src), &server.uri());
    let run = common::run(&src).await;
    let record = run.records_of(&run.strategies[0])[0].clone();
    assert!(!record.tokens_counted, "the usage chunk's count");
}

/// The base_url written in a scenario text.
fn run_uri(src: &str) -> String {
    src.split("base_url = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_cap_stops_sending_and_says_why() {
    let src = "name = \"b\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 2\n\
               [workload]\nrequests = 8\nmax_tokens = 2\n[budget]\nmax_requests = 5\n\
               [[strategy]]\nkind = \"serial\"\n[[strategy]]\nkind = \"join_all\"\n";
    let run = common::run(src).await;
    assert_eq!(run.stopped.as_deref(), Some("max_requests 5 reached"));
    assert_eq!(run.strategies.len(), 1, "later strategies are not run");
    let counts = run.strategies[0].counts();
    assert_eq!((counts.ok, counts.over_budget), (5, 3));

    let err = Scenario::parse(&src.replace("max_requests = 5", "max_cost = 1.5"), "b.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("budget.max_cost: needs prices to count cost"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prompts_from_a_file_are_sent_and_sized_by_their_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prompts.jsonl"),
        "{\"prompt\": \"Summarise the plot of Hamlet in one line.\"}\n{\"prompt\": \"Name a prime.\"}\n",
    )
    .unwrap();
    let src = "name = \"p\"\n[target]\nkind = \"mock\"\n[mock]\nttft_ms = 2\n\
               [workload]\nrequests = 4\nmax_tokens = 2\nprompts = \"prompts.jsonl\"\n[[strategy]]\nkind = \"serial\"\n";
    let outcome = common::run_in(src, dir.path(), tokio_util::sync::CancellationToken::new()).await;
    let records = common::records(&outcome, 0);
    let sizes: Vec<u32> = records.iter().map(|r| r.prompt_tokens).collect();
    assert_eq!(
        sizes,
        [8, 3, 8, 3],
        "prompts cycle; their words are their length"
    );
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
    let mock = outcome.result.strategies[0].mock.unwrap();
    assert_eq!(mock.admitted, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_and_tls_failures_are_connect_errors() {
    // A port nobody listens on (bound, then released), and https to a plain-HTTP server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let plain = WireMock::start().await;
    let https = plain.uri().replace("http://", "https://");
    for base_url in [format!("http://{closed}"), https] {
        let src = format!(
            "name = \"c\"\n[target]\nkind = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\n\
             [client]\nconnect_timeout_s = 5\n[workload]\nrequests = 1\nmax_tokens = 1\n[[strategy]]\nkind = \"serial\"\nclient = \"reqwest\"\n"
        );
        let run = common::run(&src).await;
        let record = &run.records_of(&run.strategies[0])[0];
        assert_eq!(
            record.outcome,
            Outcome::Failed(ErrorClass::Connect),
            "{base_url}: {:?}",
            record.error
        );
        assert!(
            record
                .error
                .as_deref()
                .unwrap()
                .starts_with("error sending request"),
            "{:?}",
            record.error
        );
    }
}
