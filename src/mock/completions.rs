//! OpenAI's legacy Completions on the mock: a bare prompt in, `text_completion` objects
//! out; ids, rate-limit headers and errors as OpenAI's other endpoints (`openai`).
//!
//! Owns this endpoint's wire format only; must not touch the pipeline's steps.

use super::MockState;
use super::cache::PromptTokens;
use super::generator::CompletionPlan;
use super::openai::{self, ChunkObject, ContentChunks, end_of_stream};
use super::pipeline::{self, ParsedRequest, ProviderConventions, ResponseMeta, ServedApi};
use super::stream::{Framer, data_frame};
use crate::wire::completions::{
    COMPLETIONS_PATH, CompletionRequest, DEFAULT_MAX_TOKENS, Prompt, TextChoice, TextCompletion,
};
use crate::wire::openai::{FinishReason, UsageField};
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(COMPLETIONS_PATH, post(pipeline::serve::<LegacyCompletions>))
}

struct LegacyCompletions;

impl ServedApi for LegacyCompletions {
    const PROVIDER: ProviderConventions = openai::OPENAI;
    type SseFramer = TextFramer;

    fn response_id(serial: u64) -> String {
        format!("cmpl-{serial:024x}")
    }

    fn parse(body: &[u8]) -> Result<ParsedRequest, String> {
        let request: CompletionRequest =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        let prompt = match &request.prompt {
            Prompt::One(prompt) => prompt.to_string(),
            Prompt::Batch(batch) if batch.len() == 1 => batch[0].to_string(),
            Prompt::Batch(_) => {
                return Err(
                    "The mock answers one prompt per request: send the prompt as a \
                            string or a list of one string."
                        .into(),
                );
            }
        };
        let mut prompt_tokens = PromptTokens::automatic();
        prompt_tokens.text(&prompt);
        Ok(ParsedRequest {
            prompt_tokens,
            prompt,
            // The API's own default applies when the request leaves max_tokens out.
            output_cap: Some(request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
            stream: request.stream,
            include_usage: request.include_usage(),
            choices: 1,
            model: request.model.into_owned(),
        })
    }

    fn framer(meta: ResponseMeta, _choices: u32, include_usage: bool) -> TextFramer {
        TextFramer::new(meta, openai::usage_field(include_usage))
    }

    fn whole(meta: &ResponseMeta, texts: Vec<String>, plan: &CompletionPlan) -> Response {
        let text = pipeline::only_text(texts);
        let choices = choice(&text, Some(plan.finish_reason()));
        let usage = UsageField::Totals(openai::usage(meta, plan));
        axum::Json(object(meta, &choices, usage)).into_response()
    }
}

/// A content chunk of `meta`'s response with `text` (its template's full rendering).
pub(super) fn content_chunk(meta: &ResponseMeta, text: &str, usage: UsageField, out: &mut Vec<u8>) {
    data_frame(out, &object(meta, &choice(text, None), usage));
}

fn object<'a>(
    meta: &'a ResponseMeta,
    choices: &'a [TextChoice<'a>],
    usage: UsageField,
) -> TextCompletion<'a> {
    TextCompletion {
        id: Cow::Borrowed(&meta.id),
        object: Cow::Borrowed("text_completion"),
        created: meta.created,
        model: Cow::Borrowed(&meta.model),
        choices: Cow::Borrowed(choices),
        usage,
    }
}

fn choice(text: &str, finish: Option<FinishReason>) -> [TextChoice<'_>; 1] {
    [TextChoice {
        text: Cow::Borrowed(text),
        index: 0,
        logprobs: None,
        finish_reason: finish,
    }]
}

/// Legacy chunks: no start frame, one `text_completion` chunk per token, a finish chunk
/// with empty text, the usage chunk when `stream_options.include_usage` asked for it,
/// then `data: [DONE]`.
struct TextFramer {
    meta: ResponseMeta,
    usage: UsageField,
    content: ContentChunks,
}

impl TextFramer {
    fn new(meta: ResponseMeta, usage: UsageField) -> TextFramer {
        let content = ContentChunks::new(&meta, ChunkObject::Text, 1, usage);
        TextFramer {
            meta,
            usage,
            content,
        }
    }
}

impl Framer for TextFramer {
    fn start(&mut self, _out: &mut Vec<u8>) {}

    fn token(&mut self, _choice: u32, text: &str, out: &mut Vec<u8>) {
        self.content.write(0, text, out);
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        let last = choice("", Some(plan.finish_reason()));
        data_frame(out, &object(&self.meta, &last, self.usage));
        end_of_stream(out, self.usage, &self.meta, plan, |out, totals| {
            data_frame(out, &object(&self.meta, &[], totals));
        });
    }

    fn error_event(&mut self, out: &mut Vec<u8>) {
        openai::error_event(out);
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        openai::malformed(out);
    }
}
