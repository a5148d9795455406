//! Anthropic Messages on the mock: the request, the event sequence of a stream, the
//! whole message, the `anthropic-ratelimit-*` headers, the error envelope and the model
//! list.
//!
//! Owns Anthropic's wire format; the request's steps are the pipeline's, and the wire
//! types [`crate::wire::anthropic`]'s. Must not touch admission, pacing or faults.

use super::cache::PromptTokens;
use super::generator::CompletionPlan;
use super::limits::{Dimension, RateLimited, Reading};
use super::pipeline::{self, ParsedRequest, ProviderConventions, Refusal, ResponseMeta, ServedApi};
use super::stream::{Fill, FrameTemplate, Framer, Hole, named_frame};
use super::{MockState, insert_named};
use crate::wire::anthropic::{
    Block, MESSAGES_PATH, MessageDeltaBody, MessageResponse, MessagesErrorBody,
    MessagesErrorEnvelope, MessagesRequest, MessagesUsage, OutputUsage, StopReason, StreamEvent,
    TextDelta, error_type,
};
use crate::wire::openai::FinishReason;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(MESSAGES_PATH, post(pipeline::serve::<Messages>))
}

struct Messages;

impl ServedApi for Messages {
    const PROVIDER: ProviderConventions = ProviderConventions {
        request_id_header: "request-id",
        request_id_digits: 24,
        metered: &[
            Dimension::Requests,
            Dimension::InputTokens,
            Dimension::OutputTokens,
        ],
        rate_limit_headers,
        error_body,
        zero_output_cap: "max_tokens: must be greater than or equal to 1",
        processing_ms_header: None,
        cache_reads_metered: false,
    };
    type SseFramer = EventFramer;

    /// Message ids count from 1, request ids from 0.
    fn response_id(serial: u64) -> String {
        format!("msg_{:024x}", serial + 1)
    }

    fn parse(body: &[u8]) -> Result<ParsedRequest, String> {
        let request: MessagesRequest =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        let mut prompt_tokens = PromptTokens::explicit();
        if let Some(system) = &request.system {
            prompt_tokens.role("system");
            prompt_tokens.content(system);
        }
        for message in &request.messages {
            prompt_tokens.role(&message.role);
            prompt_tokens.content(&message.content);
        }
        Ok(ParsedRequest {
            prompt_tokens,
            prompt: request
                .messages
                .last()
                .map(|m| m.content.texts().concat())
                .unwrap_or_default(),
            output_cap: Some(request.max_tokens),
            stream: request.stream,
            include_usage: false,
            choices: 1,
            model: request.model.into_owned(),
        })
    }

    fn framer(meta: ResponseMeta, _choices: u32, _include_usage: bool) -> EventFramer {
        EventFramer { meta }
    }

    fn whole(meta: &ResponseMeta, texts: Vec<String>, plan: &CompletionPlan) -> Response {
        let text = pipeline::only_text(texts);
        let usage = usage(meta, plan.output_tokens());
        let body = message(
            meta,
            vec![text_block(&text)],
            Some(stop_reason(plan)),
            usage,
        );
        axum::Json(body).into_response()
    }
}

/// The `anthropic-ratelimit-*` headers of the metered buckets: resets as RFC 3339
/// times, token counts rounded down to thousands, and `tokens-*` for the most
/// restrictive token bucket.
fn rate_limit_headers(readings: &[Reading], headers: &mut HeaderMap) {
    for r in readings {
        write_reading(headers, name_of(r.dimension), r);
    }
    let most_restrictive = readings
        .iter()
        .filter(|r| r.dimension != Dimension::Requests)
        .min_by_key(|r| r.remaining);
    if let Some(r) = most_restrictive {
        write_reading(headers, "tokens", r);
    }
}

/// A refusal in Anthropic's envelope: its `type` set by the status, and the request id.
fn error_body(refusal: &Refusal, status: StatusCode, request_id: &str) -> Response {
    let message = match refusal {
        Refusal::Invalid { message, .. } => message.clone(),
        Refusal::Injected(status) => injected_message(*status).to_string(),
        Refusal::QuotaExhausted => "Your organization's usage quota is exhausted.".to_string(),
        Refusal::RateLimited {
            limited, readings, ..
        } => rate_limited_message(limited, readings),
    };
    let body = MessagesErrorEnvelope {
        kind: "error".into(),
        error: MessagesErrorBody {
            kind: error_type(status.as_u16()).into(),
            message: message.into(),
        },
        request_id: Some(request_id.into()),
    };
    axum::Json(body).into_response()
}

fn injected_message(status: u16) -> &'static str {
    match status {
        429 => "Rate limit exceeded (injected fault)",
        529 => "Overloaded",
        _ => "Internal server error",
    }
}

fn rate_limited_message(limited: &RateLimited, readings: &[Reading]) -> String {
    let limit = readings
        .iter()
        .find(|r| r.dimension == limited.dimension)
        .map_or(0, |r| r.limit);
    format!(
        "This request would exceed the rate limit for your organization of {limit} {} per minute. \
         For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        name_of(limited.dimension).replace('-', " ")
    )
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

fn message<'a>(
    meta: &'a ResponseMeta,
    content: Vec<Block<'a>>,
    stop: Option<StopReason>,
    usage: MessagesUsage,
) -> MessageResponse<'a> {
    MessageResponse {
        id: Cow::Borrowed(&meta.id),
        kind: "message".into(),
        role: "assistant".into(),
        model: Cow::Borrowed(&meta.model),
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage,
    }
}

fn stop_reason(plan: &CompletionPlan) -> StopReason {
    match plan.finish_reason() {
        FinishReason::Length => StopReason::MaxTokens,
        FinishReason::Stop => StopReason::EndTurn,
    }
}

fn text_block(text: &str) -> Block<'_> {
    Block::text(text)
}

/// Usage as Anthropic reports it: `input_tokens` is the part of the prompt neither read
/// from nor written to the cache.
fn usage(meta: &ResponseMeta, output_tokens: u32) -> MessagesUsage {
    let cached = meta.cached.unwrap_or_default();
    MessagesUsage {
        cache_creation_input_tokens: cached.written,
        cache_read_input_tokens: cached.read,
        ..MessagesUsage::new(
            meta.prompt_tokens - cached.read - cached.written,
            output_tokens,
        )
    }
}

/// The Messages event sequence: `message_start`, `content_block_start`, `ping`,
/// `content_block_delta` per token, `content_block_stop`, `message_delta` (cumulative
/// usage), `message_stop`. Every frame names its event, as the SDKs require.
struct EventFramer {
    meta: ResponseMeta,
}

impl EventFramer {
    fn emit(out: &mut Vec<u8>, event: &StreamEvent) {
        named_frame(out, event.name(), event);
    }
}

/// `content_block_delta` frames name no message, so every stream shares one template.
static TOKEN_FRAME: LazyLock<FrameTemplate<1>> = LazyLock::new(|| {
    let render = |out: &mut Vec<u8>| {
        let delta = TextDelta {
            kind: "text_delta".into(),
            text: Hole::TEXT.into(),
        };
        EventFramer::emit(out, &StreamEvent::ContentBlockDelta { index: 0, delta });
    };
    FrameTemplate::new(render, [Hole::Text])
});

impl Framer for EventFramer {
    fn start(&mut self, out: &mut Vec<u8>) {
        let usage = usage(&self.meta, 1);
        let message = message(&self.meta, Vec::new(), None, usage);
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

    fn token(&mut self, _choice: u32, text: &str, out: &mut Vec<u8>) {
        TOKEN_FRAME.write([Fill::Text(text)], out);
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        Self::emit(out, &StreamEvent::ContentBlockStop { index: 0 });
        let delta = MessageDeltaBody {
            stop_reason: Some(stop_reason(plan)),
            stop_sequence: None,
        };
        let usage = OutputUsage {
            output_tokens: plan.output_tokens(),
        };
        Self::emit(out, &StreamEvent::MessageDelta { delta, usage });
        Self::emit(out, &StreamEvent::MessageStop);
    }

    /// `event: error` with an `overloaded_error`, as Anthropic sends mid-stream.
    fn error_event(&mut self, out: &mut Vec<u8>) {
        let error = MessagesErrorBody {
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

/// `GET /v1/models` in Anthropic's list format.
pub(super) fn model_list(ids: &[String]) -> serde_json::Value {
    let data: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    serde_json::json!({"data": data, "has_more": false, "first_id": ids.first(), "last_id": ids.last()})
}
