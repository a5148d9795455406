//! OpenAI Chat Completions on the mock: admission (rate limit), then a streamed or whole
//! completion paced by the request's [`CompletionPlan`].

use super::generator::{CompletionPlan, count_prompt_tokens};
use super::rate_limit::go_duration;
use super::{MockState, lock};
use crate::wire::openai::{
    AssistantMessage, CHAT_COMPLETIONS_PATH, ChatChunk, ChatCompletion, ChatRequest, ChunkChoice,
    CompletionChoice, DONE, Delta, ErrorBody, ErrorEnvelope, Usage, UsageField,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(CHAT_COMPLETIONS_PATH, post(chat_completions))
}

async fn chat_completions(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    if let Some(end) = state.stalled_until() {
        tokio::time::sleep_until(end.into()).await;
    }
    let received = Instant::now();
    let counters = &state.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let serial = state.next_id.fetch_add(1, Ordering::Relaxed);
    let mut headers = HeaderMap::new();
    insert(&mut headers, "x-request-id", format!("req_{serial:016x}"));

    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return invalid_request(&state, headers, &format!("Invalid request body: {e}")),
    };
    if request.output_cap() == Some(0) {
        return invalid_request(&state, headers, "max_tokens must be at least 1");
    }
    if let Some(rejection) = rate_limit(&state, &request, &mut headers) {
        return rejection;
    }
    counters.admitted.fetch_add(1, Ordering::Relaxed);

    let prompt_tokens = count_prompt_tokens(request.messages.iter().map(|m| m.content.as_ref()));
    let prompt = request.messages.last().map_or("", |m| m.content.as_ref());
    let plan = CompletionPlan::draw(&state.config, state.seed, prompt, request.output_cap());
    let meta = ResponseMeta {
        id: format!("chatcmpl-{serial:024x}"),
        created: unix_now(),
        model: request.model.into_owned(),
        prompt_tokens,
    };
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        stream_response(state.clone(), headers, plan, meta, include_usage, received)
    } else {
        whole_response(&state, headers, plan, meta, received).await
    }
}

/// Charges the request against the RPM bucket and returns the 429 if it is refused.
/// Every response carries the bucket's `x-ratelimit-*-requests` headers; a rejection
/// adds `retry-after`.
fn rate_limit(
    state: &MockState,
    request: &ChatRequest,
    headers: &mut HeaderMap,
) -> Option<Response> {
    let bucket = state.rpm.as_ref()?;
    let now = std::time::Instant::now();
    let mut bucket = lock(bucket);
    let verdict = bucket.try_take(1.0, now);
    let limit = bucket.capacity();
    insert(headers, "x-ratelimit-limit-requests", limit.to_string());
    insert(
        headers,
        "x-ratelimit-remaining-requests",
        bucket.remaining(now).to_string(),
    );
    insert(
        headers,
        "x-ratelimit-reset-requests",
        go_duration(bucket.time_to_full(now)),
    );
    drop(bucket);
    let denied = verdict.err()?;
    state.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
    let retry_after = denied.wait.as_secs_f64().ceil().max(1.0) as u64;
    insert(headers, "retry-after", retry_after.to_string());
    let message = format!(
        "Rate limit reached for {} in organization org-llmbench on requests per min (RPM): \
         Limit {limit}, Used {limit}, Requested 1. Please try again in {}.",
        request.model,
        go_duration(denied.wait)
    );
    Some(error_response(
        StatusCode::TOO_MANY_REQUESTS,
        headers.clone(),
        &message,
        "requests",
        Some("rate_limit_exceeded"),
    ))
}

fn invalid_request(state: &MockState, headers: HeaderMap, message: &str) -> Response {
    state.counters.invalid.fetch_add(1, Ordering::Relaxed);
    error_response(
        StatusCode::BAD_REQUEST,
        headers,
        message,
        "invalid_request_error",
        None,
    )
}

fn error_response(
    status: StatusCode,
    headers: HeaderMap,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Response {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message: message.into(),
            kind: kind.into(),
            param: None,
            code: code.map(Cow::Borrowed),
        },
    };
    (status, headers, axum::Json(envelope)).into_response()
}

/// What every chunk or body of one response repeats.
struct ResponseMeta {
    id: String,
    created: u64,
    model: String,
    prompt_tokens: u32,
}

impl ResponseMeta {
    fn chunk<'a>(&'a self, choices: Vec<ChunkChoice<'a>>, usage: UsageField) -> ChatChunk<'a> {
        ChatChunk {
            id: Cow::Borrowed(&self.id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created: self.created,
            model: Cow::Borrowed(&self.model),
            choices,
            usage,
        }
    }
}

/// One `data: …\n\n` frame: the only allocation per token.
fn frame(chunk: &ChatChunk) -> Bytes {
    let mut buf = Vec::with_capacity(224);
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, chunk).expect("a chunk always serializes");
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

fn choice(
    delta: Delta<'_>,
    finish: Option<crate::wire::openai::FinishReason>,
) -> Vec<ChunkChoice<'_>> {
    vec![ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    }]
}

/// Where a streamed response is: role chunk, content chunks, finish chunk, optional
/// usage chunk, `[DONE]`.
enum Stage {
    Role,
    Content { sent: u32 },
    Finish,
    Usage,
    Done,
    End,
}

struct StreamState {
    state: Arc<MockState>,
    plan: CompletionPlan,
    meta: ResponseMeta,
    include_usage: bool,
    stage: Stage,
    /// Deadline of the next token, anchored to the request's arrival: sleeps that
    /// overshoot do not push the rest of the stream later.
    next_at: Instant,
}

impl StreamState {
    fn usage_field(&self) -> UsageField {
        if self.include_usage {
            UsageField::Null
        } else {
            UsageField::Absent
        }
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        let usage = self.usage_field();
        let (bytes, next) = match self.stage {
            Stage::Role => {
                tokio::time::sleep_until(self.next_at).await;
                let delta = Delta {
                    role: Some("assistant".into()),
                    content: Some("".into()),
                };
                let first = if self.plan.output_tokens == 0 {
                    Stage::Finish
                } else {
                    Stage::Content { sent: 0 }
                };
                (frame(&self.meta.chunk(choice(delta, None), usage)), first)
            }
            Stage::Content { sent } => {
                tokio::time::sleep_until(self.next_at).await;
                self.next_at += self.plan.next_gap();
                let delta = Delta {
                    role: None,
                    content: Some(self.plan.next_word().into()),
                };
                let bytes = frame(&self.meta.chunk(choice(delta, None), usage));
                let counters = &self.state.counters;
                counters.output_tokens_sent.fetch_add(1, Ordering::Relaxed);
                let sent = sent + 1;
                let next = if sent < self.plan.output_tokens {
                    Stage::Content { sent }
                } else {
                    Stage::Finish
                };
                (bytes, next)
            }
            Stage::Finish => {
                let finish = Some(self.plan.finish_reason);
                let bytes = frame(&self.meta.chunk(choice(Delta::default(), finish), usage));
                let next = if self.include_usage {
                    Stage::Usage
                } else {
                    Stage::Done
                };
                (bytes, next)
            }
            Stage::Usage => {
                let totals = Usage::new(self.meta.prompt_tokens, self.plan.output_tokens);
                let bytes = frame(&self.meta.chunk(Vec::new(), UsageField::Totals(totals)));
                (bytes, Stage::Done)
            }
            Stage::Done => (Bytes::from(format!("data: {DONE}\n\n")), Stage::End),
            Stage::End => return None,
        };
        self.stage = next;
        Some(bytes)
    }
}

fn stream_response(
    state: Arc<MockState>,
    mut headers: HeaderMap,
    plan: CompletionPlan,
    meta: ResponseMeta,
    include_usage: bool,
    received: Instant,
) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let stream = StreamState {
        state,
        next_at: received + plan.ttft,
        plan,
        meta,
        include_usage,
        stage: Stage::Role,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        s.next_frame()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), s))
    });
    (StatusCode::OK, headers, Body::from_stream(body)).into_response()
}

async fn whole_response(
    state: &MockState,
    mut headers: HeaderMap,
    mut plan: CompletionPlan,
    meta: ResponseMeta,
    received: Instant,
) -> Response {
    let mut text = String::new();
    let mut done_at = received + plan.ttft;
    for k in 0..plan.output_tokens {
        if k > 0 {
            done_at += plan.next_gap();
        }
        text.push_str(plan.next_word());
    }
    tokio::time::sleep_until(done_at).await;
    let counters = &state.counters;
    counters
        .output_tokens_sent
        .fetch_add(u64::from(plan.output_tokens), Ordering::Relaxed);
    let body = ChatCompletion {
        id: Cow::Borrowed(&meta.id),
        object: Cow::Borrowed("chat.completion"),
        created: meta.created,
        model: Cow::Borrowed(&meta.model),
        choices: vec![CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: Some(text.into()),
                refusal: None,
            },
            logprobs: None,
            finish_reason: Some(plan.finish_reason),
        }],
        usage: Some(Usage::new(meta.prompt_tokens, plan.output_tokens)),
    };
    let elapsed_ms = received.elapsed().as_millis().to_string();
    insert(&mut headers, "openai-processing-ms", elapsed_ms);
    (StatusCode::OK, headers, axum::Json(body)).into_response()
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
