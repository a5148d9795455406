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
        for record in &run.strategies[0].records {
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
