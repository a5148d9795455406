//! OpenAI Chat Completions on the mock, and what OpenAI's endpoints share (the legacy
//! endpoint is in `completions`): the error envelope, the `x-ratelimit-*` headers, the
//! end of a stream, its error event, the model list.
//!
//! Owns OpenAI's wire format; the request's steps are the pipeline's, and the wire
//! types [`crate::wire::openai`]'s. Must not touch admission, pacing or faults.

use super::cache::PromptTokens;
use super::generator::{ChoicePlan, CompletionPlan};
use super::limits::RateLimited;
use super::limits::{Dimension, Reading};
use super::pipeline::{self, ParsedRequest, ProviderConventions, Refusal, ResponseMeta, ServedApi};
use super::rate_limit::go_duration;
use super::stream::{Fill, FrameTemplate, Framer, Hole, data_frame};
use super::{MockState, insert_named};
use crate::wire::openai::{
    AssistantMessage, CHAT_COMPLETIONS_PATH, ChatChunk, ChatCompletion, ChatRequest, ChunkChoice,
    CompletionChoice, DONE, Delta, ErrorBody, ErrorEnvelope, FinishReason, Usage, UsageField,
};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(CHAT_COMPLETIONS_PATH, post(pipeline::serve::<Chat>))
}

/// What OpenAI's endpoints answer alike.
pub(super) const OPENAI: ProviderConventions = ProviderConventions {
    request_id_header: "x-request-id",
    request_id_digits: 16,
    metered: &[Dimension::Requests, Dimension::Tokens],
    rate_limit_headers,
    error_body,
    zero_output_cap: "max_tokens must be at least 1",
    processing_ms_header: Some("openai-processing-ms"),
    cache_reads_metered: true,
};

/// The most choices (`n`) the mock serves in one response.
pub(super) const MAX_CHOICES: u32 = 8;

struct Chat;

impl ServedApi for Chat {
    const PROVIDER: ProviderConventions = OPENAI;
    type SseFramer = ChunkFramer;

    fn response_id(serial: u64) -> String {
        format!("chatcmpl-{serial:024x}")
    }

    fn parse(body: &[u8]) -> Result<ParsedRequest, String> {
        let request: ChatRequest =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        let mut prompt_tokens = PromptTokens::automatic();
        for message in &request.messages {
            prompt_tokens.role(&message.role);
            if let Some(content) = &message.content {
                prompt_tokens.content(content);
            }
        }
        Ok(ParsedRequest {
            prompt_tokens,
            prompt: request
                .messages
                .last()
                .and_then(|m| m.content.as_ref())
                .map(|c| c.texts().join(" "))
                .unwrap_or_default(),
            output_cap: request.output_cap(),
            stream: request.stream,
            include_usage: request.include_usage(),
            choices: choices(request.n)?,
            model: request.model.into_owned(),
        })
    }

    fn framer(meta: ResponseMeta, choices: u32, include_usage: bool) -> ChunkFramer {
        ChunkFramer::new(meta, choices, usage_field(include_usage))
    }

    fn whole(meta: &ResponseMeta, texts: Vec<String>, plan: &CompletionPlan) -> Response {
        let choice = |((index, text), drawn): ((u32, String), &ChoicePlan)| CompletionChoice {
            index,
            message: AssistantMessage {
                role: "assistant".into(),
                content: Some(Cow::Owned(text)),
                refusal: None,
            },
            logprobs: None,
            finish_reason: Some(drawn.finish_reason),
        };
        axum::Json(ChatCompletion {
            id: Cow::Borrowed(&meta.id),
            object: Cow::Borrowed("chat.completion"),
            created: meta.created,
            model: Cow::Borrowed(&meta.model),
            choices: (0..).zip(texts).zip(&plan.choices).map(choice).collect(),
            usage: Some(usage(meta, plan)),
        })
        .into_response()
    }
}

/// `n`, checked as OpenAI checks it (the mock serves at most [`MAX_CHOICES`]).
fn choices(n: Option<u32>) -> Result<u32, String> {
    match n.unwrap_or(1) {
        0 => Err(
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."
                .into(),
        ),
        n if n > MAX_CHOICES => Err(format!(
            "Invalid 'n': integer above maximum value. Expected a value <= {MAX_CHOICES}, but got {n} instead."
        )),
        n => Ok(n),
    }
}

/// The usage of a response: every choice's tokens (OpenAI's `completion_tokens` sums
/// them), and the cached part of the prompt when the mock models caching.
pub(super) fn usage(meta: &ResponseMeta, plan: &CompletionPlan) -> Usage {
    let usage = Usage::new(meta.prompt_tokens, plan.output_tokens());
    match meta.cached {
        Some(cached) => usage.with_cached(cached.read),
        None => usage,
    }
}

/// The `x-ratelimit-*` headers of the metered buckets: limit, remaining, and the reset
/// as a Go duration.
fn rate_limit_headers(readings: &[Reading], headers: &mut HeaderMap) {
    for r in readings {
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
}

/// A refusal in OpenAI's envelope: its `type`, `code` and message (the status and
/// request id are in the headers only).
fn error_body(refusal: &Refusal, _status: StatusCode, _request_id: &str) -> Response {
    let (kind, code, message) = match refusal {
        Refusal::Invalid { message, .. } => ("invalid_request_error", None, message.clone()),
        Refusal::Injected(status) => injected_error(*status),
        Refusal::QuotaExhausted => (
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details."
                .to_string(),
        ),
        Refusal::RateLimited {
            limited,
            readings,
            model,
        } => rate_limited_error(limited, readings, model),
    };
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message: message.into(),
            kind: kind.into(),
            param: None,
            code: code.map(Cow::Borrowed),
        },
    };
    axum::Json(envelope).into_response()
}

type ErrorParts = (&'static str, Option<&'static str>, String);

/// An injected HTTP error (a 429 says to retry after 1 s).
fn injected_error(status: u16) -> ErrorParts {
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
    (kind, code, message.to_string())
}

fn rate_limited_error(limited: &RateLimited, readings: &[Reading], model: &str) -> ErrorParts {
    let (kind, label) = match limited.dimension {
        Dimension::Requests => ("requests", "requests per min (RPM)"),
        _ => ("tokens", "tokens per min (TPM)"),
    };
    let reading = readings.iter().find(|r| r.dimension == limited.dimension);
    let limit = reading.map_or(0, |r| r.limit);
    let used = reading.map_or(0, |r| r.limit - r.remaining.min(r.limit));
    let message = format!(
        "Rate limit reached for {model} in organization org-llmbench on {label}: Limit {limit}, \
         Used {used}, Requested {}. Please try again in {}.",
        limited.requested,
        go_duration(limited.wait)
    );
    (kind, Some("rate_limit_exceeded"), message)
}

fn chunk<'a>(
    meta: &'a ResponseMeta,
    choices: &'a [ChunkChoice<'a>],
    usage: UsageField,
) -> ChatChunk<'a> {
    ChatChunk {
        id: Cow::Borrowed(&meta.id),
        object: Cow::Borrowed("chat.completion.chunk"),
        created: meta.created,
        model: Cow::Borrowed(&meta.model),
        choices: Cow::Borrowed(choices),
        usage,
    }
}

/// One choice of a chunk, on the stack: writing a chunk allocates only the frame.
fn choice(index: u32, delta: Delta<'_>, finish: Option<FinishReason>) -> [ChunkChoice<'_>; 1] {
    [ChunkChoice {
        index,
        delta,
        logprobs: None,
        finish_reason: finish,
    }]
}

/// Chat-completion chunks: role chunk, content chunks (a choice's chunk per step while
/// it generates), finish chunk (each with its choice's reason), each in index order as
/// OpenAI interleaves them, the usage chunk when `stream_options.include_usage` asked
/// for it, then `data: [DONE]`.
struct ChunkFramer {
    meta: ResponseMeta,
    usage: UsageField,
    content: ContentChunks,
}

impl ChunkFramer {
    fn new(meta: ResponseMeta, choices: u32, usage: UsageField) -> ChunkFramer {
        let content = ContentChunks::new(&meta, ChunkObject::Chat, choices, usage);
        ChunkFramer {
            meta,
            usage,
            content,
        }
    }
}

/// Which of OpenAI's streamed objects a content chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkObject {
    /// `chat.completion.chunk`, its text in `choices[].delta.content`.
    Chat,
    /// The legacy `text_completion`, its text in `choices[].text`.
    Text,
}

impl ChunkObject {
    /// Writes the content chunk of `meta`'s response for choice `index` with `text`,
    /// serialized whole.
    pub fn render(self, meta: &ResponseMeta, index: u32, text: &str, usage: UsageField) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            ChunkObject::Chat => {
                let delta = Delta {
                    role: None,
                    content: Some(text.into()),
                };
                data_frame(&mut out, &chunk(meta, &choice(index, delta, None), usage));
            }
            ChunkObject::Text => super::completions::content_chunk(meta, text, usage, &mut out),
        }
        out
    }
}

/// A response's content chunks (one token's text each), chat's or the legacy
/// endpoint's: written through templates with holes for what differs between responses
/// (the `id`, `created`, the `model`) and between tokens (the text), shared by every
/// response of one object, choice index and usage field. A response's own template
/// would be read cold at each of its tokens: at 10,000 streams copying those ~200 bytes
/// was a tenth of the mock's CPU, where a shared one stays in cache. No text from the
/// request is in a template, so none can be mistaken for a placeholder.
pub(super) struct ContentChunks {
    /// The response's `id` then its `model`, as JSON. Inline (about 60 bytes quoted), as
    /// is the one choice's template pointer of almost every response: at 10,000 streams
    /// this is cold at each token, and each separate allocation read then was one cache
    /// miss more.
    json: smallvec::SmallVec<[u8; 64]>,
    /// Where the model's JSON starts in `json`.
    model_at: usize,
    /// The response's `created`, beside its JSON so that a token reads one place.
    created: u64,
    /// One per choice, by index.
    templates: smallvec::SmallVec<[Arc<FrameTemplate<4>>; 1]>,
}

/// A content template's key: its object, choice index and whether its chunks carry
/// `"usage": null`. Few (two objects, at most [`MAX_CHOICES`] choices, two usage
/// fields) and none from a request's text, so the templates are kept without a bound.
type TemplateKey = (ChunkObject, u32, bool);

impl ContentChunks {
    pub fn new(
        meta: &ResponseMeta,
        object: ChunkObject,
        choices: u32,
        usage: UsageField,
    ) -> ContentChunks {
        let null = usage == UsageField::Null;
        let templates = (0..choices)
            .map(|index| Self::shared((object, index, null)))
            .collect();
        let mut json = smallvec::SmallVec::new();
        serde_json::to_writer(&mut json, &meta.id).expect("a string always serializes");
        let model_at = json.len();
        serde_json::to_writer(&mut json, &meta.model).expect("a string always serializes");
        ContentChunks {
            json,
            model_at,
            created: meta.created,
            templates,
        }
    }

    /// The template of `key`, rendered at its first use and kept.
    fn shared(key: TemplateKey) -> Arc<FrameTemplate<4>> {
        static SHARED: std::sync::Mutex<Vec<(TemplateKey, Arc<FrameTemplate<4>>)>> =
            std::sync::Mutex::new(Vec::new());
        let mut shared = super::lock(&SHARED);
        if let Some((_, template)) = shared.iter().find(|(k, _)| *k == key) {
            return template.clone();
        }
        let (object, index, null) = key;
        let placeholders = ResponseMeta {
            id: Hole::TEXT.to_string(),
            created: Hole::NUMBER,
            model: Hole::TEXT.to_string(),
            prompt_tokens: 0,
            cached: None,
        };
        let rendered = object.render(&placeholders, index, Hole::TEXT, usage_field(null));
        let holes = [Hole::Text, Hole::Number, Hole::Text, Hole::Text];
        let template = Arc::new(FrameTemplate::new(|out| *out = rendered, holes));
        shared.push((key, template.clone()));
        template
    }

    /// The number of choices.
    pub fn choices(&self) -> u32 {
        self.templates.len() as u32
    }

    /// Writes choice `index`'s chunk of one token.
    pub fn write(&self, index: u32, text: &str, out: &mut Vec<u8>) {
        let (id, model) = self.json.split_at(self.model_at);
        let values = [
            Fill::Json(id),
            Fill::Number(self.created),
            Fill::Json(model),
            Fill::Text(text),
        ];
        self.templates[index as usize].write(values, out);
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
        for index in 0..self.content.choices() {
            let delta = Delta {
                role: Some("assistant".into()),
                content: Some("".into()),
            };
            let choices = choice(index, delta, None);
            data_frame(out, &chunk(&self.meta, &choices, self.usage));
        }
    }

    fn token(&mut self, choice: u32, text: &str, out: &mut Vec<u8>) {
        self.content.write(choice, text, out);
    }

    fn choice_finished(&mut self, plan: &CompletionPlan, index: u32, out: &mut Vec<u8>) {
        let reason = plan.choices[index as usize].finish_reason;
        let choices = choice(index, Delta::default(), Some(reason));
        data_frame(out, &chunk(&self.meta, &choices, self.usage));
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        // Choices that stopped early were finished with their last token.
        let steps = plan.steps();
        for (index, drawn) in (0..).zip(&plan.choices) {
            if drawn.output_tokens == steps {
                self.choice_finished(plan, index, out);
            }
        }
        end_of_stream(out, self.usage, &self.meta, plan, |out, totals| {
            data_frame(out, &chunk(&self.meta, &[], totals));
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
        usage_chunk(out, UsageField::Totals(self::usage(meta, plan)));
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

/// `GET /v1/models` in OpenAI's list format.
pub(super) fn model_list(ids: &[String]) -> serde_json::Value {
    let data: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 1735689600, "owned_by": "llmbench"}))
        .collect();
    serde_json::json!({"object": "list", "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A content chunk written through its shared template is byte for byte the chunk
    /// serialised whole, whatever the object, id, time, model (one carrying the
    /// placeholders included), choice, usage field and text.
    #[test]
    fn a_chunk_from_its_template_is_the_chunk_serialised() {
        let models = [
            "gpt-4o",
            "m \"odd\" 18446744073709551615",
            Hole::TEXT,
            "x\"\u{1}llmbench-token\u{1}",
        ];
        for object in [ChunkObject::Chat, ChunkObject::Text] {
            for (model, usage) in models
                .into_iter()
                .zip([UsageField::Absent, UsageField::Null].into_iter().cycle())
            {
                let meta = ResponseMeta {
                    id: "chatcmpl-\"42\"".into(),
                    created: 1_700_000_000,
                    model: model.into(),
                    prompt_tokens: 7,
                    cached: None,
                };
                let choices = if object == ChunkObject::Chat { 3 } else { 1 };
                let content = ContentChunks::new(&meta, object, choices, usage);
                for index in 0..choices {
                    for text in super::super::stream::TRICKY_TEXTS {
                        let mut written = Vec::new();
                        content.write(index, text, &mut written);
                        let whole = object.render(&meta, index, text, usage);
                        assert_eq!(written, whole, "{}", String::from_utf8_lossy(&whole));
                    }
                }
            }
        }
    }
}
