//! OpenAI Responses (`POST /v1/responses`) on the mock: `input` and `instructions` in,
//! a `response` object out, or its typed events streamed. Ids, rate limits and errors
//! are OpenAI's (`openai`).
//!
//! Owns this endpoint's wire format only; must not touch the pipeline's steps.

use super::MockState;
use super::cache::PromptTokens;
use super::generator::CompletionPlan;
use super::openai;
use super::pipeline::{self, ParsedRequest, ProviderConventions, ResponseMeta, ServedApi};
use super::stream::{Fill, FrameTemplate, Framer, Hole, named_frame};
use crate::wire::openai::FinishReason;
use crate::wire::responses::{
    IncompleteDetails, IncompleteReason, ItemEvent, OutputMessage, OutputText, PartEvent,
    RESPONSES_PATH, ResponseObject, ResponseSnapshot, ResponseStatus, ResponsesEvent,
    ResponsesInput, ResponsesRequest, ResponsesUsage, TextEvent,
};
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

pub(super) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(RESPONSES_PATH, post(pipeline::serve::<Responses>))
}

struct Responses;

impl ServedApi for Responses {
    // OpenAI's conventions, but the error names the key this API's requests send.
    const PROVIDER: ProviderConventions = ProviderConventions {
        zero_output_cap: "max_output_tokens must be at least 1",
        ..openai::OPENAI
    };
    type SseFramer = ResponsesFramer;

    fn response_id(serial: u64) -> String {
        format!("resp_{serial:032x}")
    }

    fn parse(body: &[u8]) -> Result<ParsedRequest, String> {
        let request: ResponsesRequest =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        let mut prompt_tokens = PromptTokens::automatic();
        if let Some(instructions) = &request.instructions {
            prompt_tokens.role("developer");
            prompt_tokens.text(instructions);
        }
        let prompt = match &request.input {
            ResponsesInput::Text(text) => {
                prompt_tokens.role("user");
                prompt_tokens.text(text);
                text.to_string()
            }
            ResponsesInput::Items(items) => {
                for item in items {
                    prompt_tokens.role(item.role.as_deref().unwrap_or(""));
                    if let Some(content) = &item.content {
                        prompt_tokens.content(content);
                    }
                }
                let last = items.iter().rev().find_map(|i| i.content.as_ref());
                last.map(|c| c.texts().join(" ")).unwrap_or_default()
            }
        };
        Ok(ParsedRequest {
            prompt_tokens,
            prompt,
            output_cap: request.max_output_tokens,
            stream: request.stream,
            include_usage: true,
            choices: 1,
            model: request.model.into_owned(),
        })
    }

    fn framer(meta: ResponseMeta, _choices: u32, _include_usage: bool) -> ResponsesFramer {
        let item_id = item_id(&meta);
        let mut item_id_json = smallvec::SmallVec::new();
        serde_json::to_writer(&mut item_id_json, &item_id).expect("a string always serializes");
        ResponsesFramer {
            meta,
            item_id,
            item_id_json,
            text: String::new(),
            sequence: 0,
        }
    }

    fn whole(meta: &ResponseMeta, texts: Vec<String>, plan: &CompletionPlan) -> Response {
        let text = pipeline::only_text(texts);
        let item_id = item_id(meta);
        let message = output_message(&item_id, status(plan), &text);
        axum::Json(response(meta, status(plan), vec![message], Some(plan))).into_response()
    }
}

/// The id of the response's one output message, named after the response's.
fn item_id(meta: &ResponseMeta) -> String {
    format!("msg_{}", meta.id.trim_start_matches("resp_"))
}

/// `completed`, or `incomplete` when the output cap cut the response.
fn status(plan: &CompletionPlan) -> ResponseStatus {
    match plan.finish_reason() {
        FinishReason::Length => ResponseStatus::Incomplete,
        FinishReason::Stop => ResponseStatus::Completed,
    }
}

/// The `response` object; `plan` is the finished response's (its usage), `None` while
/// it is in progress.
fn response<'a>(
    meta: &'a ResponseMeta,
    status: ResponseStatus,
    output: Vec<OutputMessage<'a>>,
    plan: Option<&CompletionPlan>,
) -> ResponseObject<'a> {
    ResponseObject {
        id: Cow::Borrowed(&meta.id),
        object: "response".into(),
        created_at: meta.created,
        status,
        incomplete_details: (status == ResponseStatus::Incomplete).then_some(IncompleteDetails {
            reason: IncompleteReason::MaxOutputTokens,
        }),
        model: Cow::Borrowed(&meta.model),
        output,
        max_output_tokens: None,
        parallel_tool_calls: true,
        tool_choice: "auto".into(),
        tools: Vec::new(),
        usage: plan.map(|plan| {
            let read = meta.cached.map_or(0, |c| c.read);
            ResponsesUsage::new(meta.prompt_tokens, read, plan.output_tokens())
        }),
    }
}

fn output_message<'a>(
    item_id: &'a str,
    status: ResponseStatus,
    text: &'a str,
) -> OutputMessage<'a> {
    OutputMessage {
        kind: "message".into(),
        id: Cow::Borrowed(item_id),
        status,
        role: "assistant".into(),
        content: vec![OutputText::new(text)],
    }
}

/// The Responses event sequence: `response.created`, `response.in_progress`,
/// `response.output_item.added`, `response.content_part.added`, a
/// `response.output_text.delta` per token, `response.output_text.done`,
/// `response.content_part.done`, `response.output_item.done`, then
/// `response.completed` (or `response.incomplete` when the output cap cut it) with the
/// usage; `sequence_number` counts the events from 0.
pub(super) struct ResponsesFramer {
    meta: ResponseMeta,
    item_id: String,
    /// `item_id` as JSON, for the delta events' template. Inline (38 bytes quoted): at
    /// 10,000 streams the framer is cold at each token, and an allocation of its own
    /// would be one cache miss more.
    item_id_json: smallvec::SmallVec<[u8; 48]>,
    /// The text so far, which the closing events repeat.
    text: String,
    sequence: u64,
}

impl ResponsesFramer {
    /// The response in progress, for the opening events.
    fn snapshot(&self, sequence_number: u64) -> ResponseSnapshot<'_> {
        ResponseSnapshot {
            response: response(&self.meta, ResponseStatus::InProgress, Vec::new(), None),
            sequence_number,
        }
    }

    /// The one content part's event payload, with its text so far.
    fn part<'a>(&'a self, text: &'a str, sequence_number: u64) -> PartEvent<'a> {
        PartEvent {
            item_id: Cow::Borrowed(&self.item_id),
            output_index: 0,
            content_index: 0,
            part: OutputText::new(text),
            sequence_number,
        }
    }

    /// Writes the event numbered next; `event` is given its number.
    fn emit(&mut self, out: &mut Vec<u8>, event: impl FnOnce(&Self, u64) -> ResponsesEvent<'_>) {
        let event = event(self, self.sequence);
        named_frame(out, event.name(), &event);
        self.sequence += 1;
    }
}

impl Framer for ResponsesFramer {
    fn start(&mut self, out: &mut Vec<u8>) {
        let in_progress = ResponseStatus::InProgress;
        self.emit(out, |f, n| ResponsesEvent::Created(f.snapshot(n)));
        self.emit(out, |f, n| ResponsesEvent::InProgress(f.snapshot(n)));
        self.emit(out, |f, sequence_number| {
            ResponsesEvent::OutputItemAdded(ItemEvent {
                output_index: 0,
                item: OutputMessage {
                    content: Vec::new(),
                    ..output_message(&f.item_id, in_progress, "")
                },
                sequence_number,
            })
        });
        self.emit(out, |f, n| ResponsesEvent::ContentPartAdded(f.part("", n)));
    }

    fn token(&mut self, _choice: u32, text: &str, out: &mut Vec<u8>) {
        let values = [
            Fill::Json(&self.item_id_json),
            Fill::Text(text),
            Fill::Number(self.sequence),
        ];
        DELTA_FRAME.write(values, out);
        self.sequence += 1;
        self.text.push_str(text);
    }

    fn finish(&mut self, plan: &CompletionPlan, out: &mut Vec<u8>) {
        let status = status(plan);
        self.emit(out, |f, sequence_number| ResponsesEvent::OutputTextDone {
            item_id: Cow::Borrowed(&f.item_id),
            output_index: 0,
            content_index: 0,
            text: Cow::Borrowed(&f.text),
            logprobs: Vec::new(),
            sequence_number,
        });
        self.emit(out, |f, n| {
            ResponsesEvent::ContentPartDone(f.part(&f.text, n))
        });
        self.emit(out, |f, sequence_number| {
            ResponsesEvent::OutputItemDone(ItemEvent {
                output_index: 0,
                item: output_message(&f.item_id, status, &f.text),
                sequence_number,
            })
        });
        self.emit(out, |f, sequence_number| {
            let output = vec![output_message(&f.item_id, status, &f.text)];
            let snapshot = ResponseSnapshot {
                response: response(&f.meta, status, output, Some(plan)),
                sequence_number,
            };
            match status {
                ResponseStatus::Incomplete => ResponsesEvent::Incomplete(snapshot),
                _ => ResponsesEvent::Completed(snapshot),
            }
        });
    }

    /// `event: error`, as the API sends mid-stream.
    fn error_event(&mut self, out: &mut Vec<u8>) {
        self.emit(out, |_, sequence_number| ResponsesEvent::Error {
            code: Some("server_error".into()),
            message: "The server had an error while processing your request.".into(),
            param: None,
            sequence_number,
        });
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"event: response.output_text.delta\ndata: {\"type\": \"response.output_text.delta\", \"item_id\n\n",
        );
    }
}

/// The full rendering of a `response.output_text.delta` event, which [`DELTA_FRAME`]
/// reproduces.
fn delta_event(item_id: &str, text: &str, sequence_number: u64, out: &mut Vec<u8>) {
    let delta = ResponsesEvent::OutputTextDelta(TextEvent {
        item_id: Cow::Borrowed(item_id),
        output_index: 0,
        content_index: 0,
        delta: Cow::Borrowed(text),
        logprobs: Vec::new(),
        sequence_number,
    });
    named_frame(out, delta.name(), &delta);
}

/// Every stream's delta events, with holes for the item's id, the token's text and the
/// event's `sequence_number`: one template shared by all, so it stays in cache.
static DELTA_FRAME: LazyLock<FrameTemplate<3>> = LazyLock::new(|| {
    let render = |out: &mut Vec<u8>| delta_event(Hole::TEXT, Hole::TEXT, Hole::NUMBER, out);
    FrameTemplate::new(render, [Hole::Text, Hole::Text, Hole::Number])
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delta_template_writes_the_bytes_of_a_full_rendering() {
        let item_id = "msg_000000000000000000000000000000ff";
        let item_id_json = serde_json::to_vec(item_id).unwrap();
        for text in super::super::stream::TRICKY_TEXTS {
            for sequence_number in [0, 4, 9, 10, 12345, u64::MAX] {
                let (mut templated, mut full) = (Vec::new(), Vec::new());
                let values = [
                    Fill::Json(&item_id_json),
                    Fill::Text(text),
                    Fill::Number(sequence_number),
                ];
                DELTA_FRAME.write(values, &mut templated);
                delta_event(item_id, text, sequence_number, &mut full);
                assert_eq!(
                    String::from_utf8(templated).unwrap(),
                    String::from_utf8(full).unwrap()
                );
            }
        }
    }

    #[test]
    fn the_deltas_carry_the_events_sequence_numbers() {
        let meta = ResponseMeta {
            id: Responses::response_id(255),
            created: 1,
            model: "m".into(),
            prompt_tokens: 2,
            cached: None,
        };
        let mut framer = Responses::framer(meta, 1, true);
        let mut out = Vec::new();
        framer.start(&mut out);
        for word in [" a", " \"b\""] {
            framer.token(0, word, &mut out);
        }
        let events: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        let numbers: Vec<u64> = events
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
        assert_eq!(events[5]["delta"], " \"b\"");
        assert_eq!(events[5]["item_id"], "msg_000000000000000000000000000000ff");
    }
}
