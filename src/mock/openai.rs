//! OpenAI's endpoints on the mock: the pipeline they share (admission, rate limits,
//! faults, a streamed or whole completion paced by the request's [`CompletionPlan`]),
//! and Chat Completions; the legacy endpoint is in `completions`.

use super::faults::Fault;
use super::generator::{CompletionPlan, count_prompt_tokens};
use super::limits::{Admission, Charge, Dimension, RateLimited, api_key};
use super::rate_limit::go_duration;
use super::stream::{self, Completion, Framer, TokenFrame, data_frame};
use super::{MockState, insert, insert_named};
use crate::wire::openai::{
    AssistantMessage, CHAT_COMPLETIONS_PATH, ChatChunk, ChatCompletion, ChatRequest, ChunkChoice,
    CompletionChoice, DONE, Delta, ErrorBody, ErrorEnvelope, FinishReason, Usage, UsageField,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(CHAT_COMPLETIONS_PATH, post(complete::<Chat>))
}

/// What differs between the OpenAI endpoints the mock serves (Chat Completions, legacy
/// Completions); admission, rate limits, faults and pacing are the same for both.
pub(super) trait OpenAiApi: Send + Sync + 'static {
    /// The response id's prefix: `chatcmpl-`, `cmpl-`.
    const ID_PREFIX: &'static str;
    type Framer: Framer;
    /// Reads the request body into what admission and pacing need; `Err` is the 400's
    /// message.
    fn parse(body: &[u8]) -> Result<Parsed, String>;
    /// `usage` is what every chunk carries under `"usage"` (see [`usage_field`]).
    fn framer(meta: ResponseMeta, usage: UsageField) -> Self::Framer;
    /// The whole (non-streamed) response body.
    fn whole(meta: &ResponseMeta, text: String, plan: &CompletionPlan) -> Response;
}

/// A request as the shared steps see it.
pub(super) struct Parsed {
    pub model: String,
    pub prompt_tokens: u32,
    /// The text the completion's plan is drawn from.
    pub prompt: String,
    pub output_cap: Option<u32>,
    pub stream: bool,
    pub include_usage: bool,
}

struct Chat;

impl OpenAiApi for Chat {
    const ID_PREFIX: &'static str = "chatcmpl-";
    type Framer = ChunkFramer;

    fn parse(body: &[u8]) -> Result<Parsed, String> {
        let request: ChatRequest =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        Ok(Parsed {
            prompt_tokens: count_prompt_tokens(request.messages.iter().map(|m| m.content.as_ref())),
            prompt: request
                .messages
                .last()
                .map_or("", |m| &m.content)
                .to_string(),
            output_cap: request.output_cap(),
            stream: request.stream,
            include_usage: request.include_usage(),
            model: request.model.into_owned(),
        })
    }

    fn framer(meta: ResponseMeta, usage: UsageField) -> ChunkFramer {
        ChunkFramer::new(meta, usage)
    }

    fn whole(meta: &ResponseMeta, text: String, plan: &CompletionPlan) -> Response {
        axum::Json(ChatCompletion {
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
        })
        .into_response()
    }
}

/// One request to an OpenAI endpoint: read, charge to the rate limits, draw its plan
/// and fault, wait for a slot, then stream or return the completion.
pub(super) async fn complete<A: OpenAiApi>(
    State(state): State<Arc<MockState>>,
    request_headers: HeaderMap,
    body: super::Body,
) -> Response {
    let super::Arrival {
        received,
        serial,
        body,
    } = super::arrive(&state, body).await;
    let mut headers = HeaderMap::new();
    insert(&mut headers, "x-request-id", format!("req_{serial:016x}"));
    let body = match body {
        Ok(body) => body,
        Err((status, message)) => {
            return error_response(status, headers, &message, "invalid_request_error", None);
        }
    };
    let request = match A::parse(&body) {
        Ok(request) => request,
        Err(message) => return invalid_request(&state, headers, &message),
    };
    if request.output_cap == Some(0) {
        return invalid_request(&state, headers, "max_tokens must be at least 1");
    }
    let charge = Charge {
        input: request.prompt_tokens,
        max_output: request.output_cap.unwrap_or(0),
    };
    let key = api_key(&request_headers);
    if let Some(rejection) = rate_limit(&state, &key, charge, &request.model, &mut headers) {
        return rejection;
    }
    state.counters.admitted.fetch_add(1, Ordering::Relaxed);

    let plan = CompletionPlan::draw(
        &state.config,
        state.seed,
        &request.prompt,
        request.output_cap,
    );
    let fault = match state.fault_for(&request_headers, &plan, request.stream) {
        Ok(fault) => fault,
        Err(message) => return invalid_request(&state, headers, &message),
    };
    if let Some(Fault::Status(status)) = fault {
        return status_fault(status, headers);
    }
    let pacing = match state.pacing(request.prompt_tokens) {
        Ok(pacing) => pacing,
        Err(status) => return status_fault(status, headers),
    };
    let meta = ResponseMeta {
        id: format!("{}{serial:024x}", A::ID_PREFIX),
        created: unix_now(),
        model: request.model,
        prompt_tokens: request.prompt_tokens,
    };
    let completion = Completion {
        plan,
        received,
        pacing,
        fault,
        settlement: None,
    };
    if request.stream {
        let framer = A::framer(meta, usage_field(request.include_usage));
        stream_response(state.clone(), headers, completion, framer)
    } else {
        if let Some(faulty) = stream::whole_fault(&state, completion.fault).await {
            return faulty;
        }
        whole_response::<A>(&state, headers, completion, meta).await
    }
}

/// An injected HTTP error, in OpenAI's envelope (a 429 says to retry after 1 s).
fn status_fault(status: u16, mut headers: HeaderMap) -> Response {
    let (kind, code, message) = match status {
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached (injected fault). Please try again in 1s.",
        ),
        503 => (
            "server_error",
            None,
            "The engine is currently overloaded, please try again later.",
        ),
        529 => ("overloaded_error", None, "Overloaded"),
        _ => (
            "server_error",
            None,
            "The server had an error while processing your request.",
        ),
    };
    if status == 429 {
        insert(&mut headers, "retry-after", "1".into());
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(status, headers, message, kind, code)
}

/// Charges the request to its key's RPM and TPM buckets and returns the 429 if it is
/// refused. Every response carries the `x-ratelimit-*` headers of the configured
/// dimensions; a refusal adds `retry-after`.
fn rate_limit(
    state: &MockState,
    key: &str,
    charge: Charge,
    model: &str,
    headers: &mut HeaderMap,
) -> Option<Response> {
    let (verdict, readings) =
        state.admit(key, &[Dimension::Requests, Dimension::Tokens], charge)?;
    for r in &readings {
        let unit = if r.dimension == Dimension::Requests {
            "requests"
        } else {
            "tokens"
        };
        insert_named(
            headers,
            format!("x-ratelimit-limit-{unit}"),
            r.limit.to_string(),
        );
        insert_named(
            headers,
            format!("x-ratelimit-remaining-{unit}"),
            r.remaining.to_string(),
        );
        insert_named(
            headers,
            format!("x-ratelimit-reset-{unit}"),
            go_duration(r.reset),
        );
    }
    let (kind, code, message) = match verdict {
        Admission::Admitted => return None,
        Admission::QuotaExhausted => {
            insert(headers, "x-should-retry", "false".into());
            let message =
                "You exceeded your current quota, please check your plan and billing details.";
            (
                "insufficient_quota",
                "insufficient_quota",
                message.to_string(),
            )
        }
        Admission::Limited(RateLimited {
            dimension,
            wait,
            requested,
        }) => {
            state.retry_headers(headers, wait);
            let (kind, label) = match dimension {
                Dimension::Requests => ("requests", "requests per min (RPM)"),
                _ => ("tokens", "tokens per min (TPM)"),
            };
            let reading = readings.iter().find(|r| r.dimension == dimension);
            let limit = reading.map_or(0, |r| r.limit);
            let used = reading.map_or(0, |r| r.limit - r.remaining.min(r.limit));
            let message = format!(
                "Rate limit reached for {model} in organization org-llmbench on {label}: Limit {limit}, \
                 Used {used}, Requested {requested}. Please try again in {}.",
                go_duration(wait)
            );
            (kind, "rate_limit_exceeded", message)
        }
    };
    Some(error_response(
        StatusCode::TOO_MANY_REQUESTS,
        headers.clone(),
        &message,
        kind,
        Some(code),
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
pub(super) struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u32,
}

impl ResponseMeta {
    fn chunk<'a>(&'a self, choices: &'a [ChunkChoice<'a>], usage: UsageField) -> ChatChunk<'a> {
        ChatChunk {
            id: Cow::Borrowed(&self.id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created: self.created,
            model: Cow::Borrowed(&self.model),
            choices: Cow::Borrowed(choices),
            usage,
        }
    }
}

/// The one choice of a chunk, on the stack: writing a chunk allocates only the frame.
fn choice(delta: Delta<'_>, finish: Option<FinishReason>) -> [ChunkChoice<'_>; 1] {
    [ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    }]
}

/// Chat-completion chunks: role chunk, content chunks, finish chunk, the usage chunk
/// when `stream_options.include_usage` asked for it, then `data: [DONE]`.
struct ChunkFramer {
    meta: ResponseMeta,
    usage: UsageField,
    token_frame: TokenFrame,
}

impl ChunkFramer {
    fn new(meta: ResponseMeta, usage: UsageField) -> ChunkFramer {
        let token_frame = TokenFrame::new(|text, out| {
            let delta = Delta {
                role: None,
                content: Some(text.into()),
            };
            data_frame(out, &meta.chunk(&choice(delta, None), usage));
        });
        ChunkFramer {
            meta,
            usage,
            token_frame,
        }
    }
}

/// With `include_usage` every chunk carries `"usage": null`.
pub(super) fn usage_field(include_usage: bool) -> UsageField {
    if include_usage {
        UsageField::Null
    } else {
        UsageField::Absent
    }
}

impl Framer for ChunkFramer {
    fn start(&mut self, out: &mut Vec<u8>) {
        let delta = Delta {
            role: Some("assistant".into()),
            content: Some("".into()),
        };
        data_frame(out, &self.meta.chunk(&choice(delta, None), self.usage));
    }

    fn token(&mut self, text: &str, out: &mut Vec<u8>) {
        self.token_frame.write(text, out);
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        let finish = Some(plan.finish_reason);
        data_frame(
            out,
            &self
                .meta
                .chunk(&choice(Delta::default(), finish), self.usage),
        );
        end_of_stream(out, self.usage, &self.meta, plan, |out, totals| {
            data_frame(out, &self.meta.chunk(&[], totals));
        });
    }

    fn error_event(&mut self, out: &mut Vec<u8>) {
        error_event(out);
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        malformed(out);
    }
}

/// The end of an OpenAI stream: the extra usage chunk (`usage_chunk` renders the API's
/// chunk with the totals) when `stream_options.include_usage` asked for it, then
/// `data: [DONE]`.
pub(super) fn end_of_stream(
    out: &mut Vec<u8>,
    usage: UsageField,
    meta: &ResponseMeta,
    plan: &CompletionPlan,
    usage_chunk: impl FnOnce(&mut Vec<u8>, UsageField),
) {
    if usage == UsageField::Null {
        let totals = Usage::new(meta.prompt_tokens, plan.output_tokens);
        usage_chunk(out, UsageField::Totals(totals));
    }
    out.extend_from_slice(format!("data: {DONE}\n\n").as_bytes());
}

/// `data: {"error": {…}}`, which the SDKs raise as an APIError.
pub(super) fn error_event(out: &mut Vec<u8>) {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message: "The server had an error while processing your request.".into(),
            kind: "server_error".into(),
            param: None,
            code: None,
        },
    };
    data_frame(out, &envelope);
}

/// A chunk whose JSON is cut off.
pub(super) fn malformed(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: {\"id\": \"cut-off, \"choices\": [\n\n");
}

fn stream_response(
    state: Arc<MockState>,
    mut headers: HeaderMap,
    completion: Completion,
    framer: impl Framer,
) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = stream::body(state, completion, framer);
    (StatusCode::OK, headers, body).into_response()
}

async fn whole_response<A: OpenAiApi>(
    state: &MockState,
    mut headers: HeaderMap,
    mut completion: Completion,
    meta: ResponseMeta,
) -> Response {
    let text = stream::whole(state, &mut completion).await;
    let elapsed_ms = completion.received.elapsed().as_millis().to_string();
    insert(&mut headers, "openai-processing-ms", elapsed_ms);
    (
        StatusCode::OK,
        headers,
        A::whole(&meta, text, &completion.plan),
    )
        .into_response()
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
