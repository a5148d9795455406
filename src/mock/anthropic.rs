//! Anthropic Messages on the mock: admission (rate limit), then a streamed event
//! sequence or a whole message paced by the request's [`CompletionPlan`].

use super::faults::Fault;
use super::generator::{CompletionPlan, count_prompt_tokens};
use super::limits::{Admission, Charge, Dimension, RateLimited, Reading, api_key};
use super::stream::{self, Completion, Framer, TokenFrame, named_frame};
use super::{MockState, OutputSettlement, insert, insert_named};
use crate::wire::anthropic::{
    Block, ErrorBody, ErrorEnvelope, MESSAGES_PATH, MessageDeltaBody, MessageResponse,
    MessagesRequest, OutputUsage, StopReason, StreamEvent, TextDelta, Usage, error_type,
};
use crate::wire::openai::FinishReason;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(MESSAGES_PATH, post(messages))
}

async fn messages(
    State(state): State<Arc<MockState>>,
    request_headers: HeaderMap,
    body: super::Body,
) -> Response {
    let super::Arrival {
        received,
        serial,
        body,
    } = super::arrive(&state, body).await;
    let request_id = format!("req_{serial:024x}");
    let mut headers = HeaderMap::new();
    insert(&mut headers, "request-id", request_id.clone());
    let body = match body {
        Ok(body) => body,
        Err((status, message)) => return error(status, headers, &request_id, &message),
    };
    let request: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return invalid(
                &state,
                headers,
                &request_id,
                &format!("Invalid request body: {e}"),
            );
        }
    };
    if request.max_tokens == 0 {
        return invalid(
            &state,
            headers,
            &request_id,
            "max_tokens: must be greater than or equal to 1",
        );
    }
    let texts = request
        .system
        .iter()
        .flat_map(|s| s.texts())
        .chain(request.messages.iter().flat_map(|m| m.content.texts()));
    let input_tokens = count_prompt_tokens(texts);
    let charge = Charge {
        input: input_tokens,
        max_output: request.max_tokens,
    };
    let key = api_key(&request_headers);
    if let Some(rejection) = rate_limit(&state, &key, charge, &mut headers, &request_id) {
        return rejection;
    }
    state.counters.admitted.fetch_add(1, Ordering::Relaxed);
    let settlement = OutputSettlement::new(state.clone(), key, request.max_tokens);

    let prompt = request
        .messages
        .last()
        .map(|m| m.content.texts().concat())
        .unwrap_or_default();
    let plan = CompletionPlan::draw(&state.config, state.seed, &prompt, Some(request.max_tokens));
    let fault = match state.fault_for(&request_headers, &plan, request.stream) {
        Ok(fault) => fault,
        Err(message) => return invalid(&state, headers, &request_id, &message),
    };
    if let Some(Fault::Status(status)) = fault {
        return status_fault(status, headers, &request_id);
    }
    let pacing = match state.pacing(input_tokens) {
        Ok(pacing) => pacing,
        Err(status) => return status_fault(status, headers, &request_id),
    };
    let completion = Completion {
        plan,
        received,
        pacing,
        fault,
        settlement: Some(settlement),
    };
    let meta = Meta {
        id: format!("msg_{:024x}", state.next_id.load(Ordering::Relaxed)),
        model: request.model.into_owned(),
        input_tokens,
    };
    if request.stream {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let body = stream::body(state.clone(), completion, EventFramer { meta });
        (StatusCode::OK, headers, body).into_response()
    } else {
        if let Some(faulty) = stream::whole_fault(&state, completion.fault).await {
            return faulty;
        }
        whole_message(&state, headers, completion, meta).await
    }
}

/// Charges the request to its key's RPM, ITPM and OTPM buckets and returns the 429 if
/// it is refused. Every response carries the `anthropic-ratelimit-*` headers of the
/// configured dimensions (resets as RFC 3339 times, token counts rounded down to
/// thousands, `tokens-*` for the most restrictive token bucket); a refusal adds
/// `retry-after`.
fn rate_limit(
    state: &MockState,
    key: &str,
    charge: Charge,
    headers: &mut HeaderMap,
    request_id: &str,
) -> Option<Response> {
    let dimensions = [
        Dimension::Requests,
        Dimension::InputTokens,
        Dimension::OutputTokens,
    ];
    let (verdict, readings) = state.admit(key, &dimensions, charge)?;
    for r in &readings {
        write_reading(headers, name_of(r.dimension), r);
    }
    let most_restrictive = readings
        .iter()
        .filter(|r| r.dimension != Dimension::Requests)
        .min_by_key(|r| r.remaining);
    if let Some(r) = most_restrictive {
        write_reading(headers, "tokens", r);
    }
    let message = match verdict {
        Admission::Admitted => return None,
        Admission::QuotaExhausted => {
            insert(headers, "x-should-retry", "false".into());
            "Your organization's usage quota is exhausted.".to_string()
        }
        Admission::Limited(RateLimited {
            dimension, wait, ..
        }) => {
            state.retry_headers(headers, wait);
            let limit = readings
                .iter()
                .find(|r| r.dimension == dimension)
                .map_or(0, |r| r.limit);
            format!(
                "This request would exceed the rate limit for your organization of {limit} {} per minute. \
                 For details, refer to: https://docs.claude.com/en/api/rate-limits.",
                name_of(dimension).replace('-', " ")
            )
        }
    };
    Some(error(
        StatusCode::TOO_MANY_REQUESTS,
        headers.clone(),
        request_id,
        &message,
    ))
}

fn name_of(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Requests => "requests",
        Dimension::InputTokens => "input-tokens",
        Dimension::OutputTokens => "output-tokens",
        Dimension::Tokens => "tokens",
    }
}

fn write_reading(headers: &mut HeaderMap, name: &str, r: &Reading) {
    let reset = humantime::format_rfc3339_seconds(SystemTime::now() + r.reset).to_string();
    let remaining = match r.dimension {
        Dimension::Requests => r.remaining,
        _ => r.remaining / 1000 * 1000,
    };
    insert_named(
        headers,
        format!("anthropic-ratelimit-{name}-limit"),
        r.limit.to_string(),
    );
    insert_named(
        headers,
        format!("anthropic-ratelimit-{name}-remaining"),
        remaining.to_string(),
    );
    insert_named(headers, format!("anthropic-ratelimit-{name}-reset"), reset);
}

/// An injected HTTP error in Anthropic's envelope (a 429 says to retry after 1 s).
fn status_fault(status: u16, mut headers: HeaderMap, request_id: &str) -> Response {
    let message = match status {
        429 => "Rate limit exceeded (injected fault)",
        529 => "Overloaded",
        _ => "Internal server error",
    };
    if status == 429 {
        insert(&mut headers, "retry-after", "1".into());
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, headers, request_id, message)
}

fn invalid(state: &MockState, headers: HeaderMap, request_id: &str, message: &str) -> Response {
    state.counters.invalid.fetch_add(1, Ordering::Relaxed);
    error(StatusCode::BAD_REQUEST, headers, request_id, message)
}

/// An error in Anthropic's envelope, its `type` set by the status.
pub(super) fn error(
    status: StatusCode,
    headers: HeaderMap,
    request_id: &str,
    message: &str,
) -> Response {
    let body = ErrorEnvelope {
        kind: "error".into(),
        error: ErrorBody {
            kind: error_type(status.as_u16()).into(),
            message: message.into(),
        },
        request_id: Some(request_id.into()),
    };
    (status, headers, axum::Json(body)).into_response()
}

struct Meta {
    id: String,
    model: String,
    input_tokens: u32,
}

impl Meta {
    fn message<'a>(
        &'a self,
        content: Vec<Block<'a>>,
        stop: Option<StopReason>,
        usage: Usage,
    ) -> MessageResponse<'a> {
        MessageResponse {
            id: Cow::Borrowed(&self.id),
            kind: "message".into(),
            role: "assistant".into(),
            model: Cow::Borrowed(&self.model),
            content,
            stop_reason: stop,
            stop_sequence: None,
            usage,
        }
    }
}

fn stop_reason(plan: &CompletionPlan) -> StopReason {
    match plan.finish_reason {
        FinishReason::Length => StopReason::MaxTokens,
        FinishReason::Stop => StopReason::EndTurn,
    }
}

fn text_block(text: &str) -> Block<'_> {
    Block {
        kind: "text".into(),
        text: Some(text.into()),
    }
}

/// The Messages event sequence: `message_start`, `content_block_start`, `ping`,
/// `content_block_delta` per token, `content_block_stop`, `message_delta` (cumulative
/// usage), `message_stop`. Every frame names its event, as the SDKs require.
struct EventFramer {
    meta: Meta,
}

impl EventFramer {
    fn emit(out: &mut Vec<u8>, event: &StreamEvent) {
        named_frame(out, event.name(), event);
    }
}

/// `content_block_delta` frames name no message, so every stream shares one template.
static TOKEN_FRAME: LazyLock<TokenFrame> = LazyLock::new(|| {
    TokenFrame::new(|text, out| {
        let delta = TextDelta {
            kind: "text_delta".into(),
            text: text.into(),
        };
        EventFramer::emit(out, &StreamEvent::ContentBlockDelta { index: 0, delta });
    })
});

impl Framer for EventFramer {
    fn start(&mut self, out: &mut Vec<u8>) {
        let usage = Usage::new(self.meta.input_tokens, 1);
        let message = self.meta.message(Vec::new(), None, usage);
        Self::emit(out, &StreamEvent::MessageStart { message });
        let content_block = text_block("");
        Self::emit(
            out,
            &StreamEvent::ContentBlockStart {
                index: 0,
                content_block,
            },
        );
        Self::emit(out, &StreamEvent::Ping);
    }

    fn token(&mut self, text: &str, out: &mut Vec<u8>) {
        TOKEN_FRAME.write(text, out);
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        Self::emit(out, &StreamEvent::ContentBlockStop { index: 0 });
        let delta = MessageDeltaBody {
            stop_reason: Some(stop_reason(plan)),
            stop_sequence: None,
        };
        let usage = OutputUsage {
            output_tokens: plan.output_tokens,
        };
        Self::emit(out, &StreamEvent::MessageDelta { delta, usage });
        Self::emit(out, &StreamEvent::MessageStop);
    }

    /// `event: error` with an `overloaded_error`, as Anthropic sends mid-stream.
    fn error_event(&mut self, out: &mut Vec<u8>) {
        let error = ErrorBody {
            kind: "overloaded_error".into(),
            message: "Overloaded".into(),
        };
        Self::emit(out, &StreamEvent::Error { error });
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\n\n",
        );
    }
}

async fn whole_message(
    state: &MockState,
    headers: HeaderMap,
    mut completion: Completion,
    meta: Meta,
) -> Response {
    let text = stream::whole(state, &mut completion).await;
    let plan = &completion.plan;
    let usage = Usage::new(meta.input_tokens, plan.output_tokens);
    let body = meta.message(vec![text_block(&text)], Some(stop_reason(plan)), usage);
    (StatusCode::OK, headers, axum::Json(body)).into_response()
}
