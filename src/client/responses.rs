//! The client side of OpenAI Responses (`api = "responses"`).

use super::{BodyUsage, EventSummary, UsageOf, WireAdapter};
use crate::wire::responses::{RESPONSES_PATH, ResponsesInput, ResponsesRequest, ResponsesUsage};
use crate::wire::sse::SseEvent;
use crate::workload::WorkItem;
use serde::Deserialize;
use std::borrow::Cow;

/// `response.completed` / `response.incomplete`: the response, for its usage. (Its
/// `output` holds items of kinds the mock never sends, a reasoning model's `reasoning`
/// items, `function_call`s, without a role or a message's status: reading them would
/// fail every measurement of such a model.)
#[derive(Deserialize)]
struct Closing {
    response: UsageOf<ResponsesUsage>,
}

/// `response.output_text.delta`, as much as is measured.
#[derive(Deserialize)]
struct OutputDelta<'a> {
    #[serde(borrow)]
    delta: Cow<'a, str>,
}

/// `error`, as much as is reported.
#[derive(Deserialize)]
struct ErrorEvent<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

pub struct OpenAiResponses {
    pub model: String,
}

impl WireAdapter for OpenAiResponses {
    fn path(&self) -> &'static str {
        RESPONSES_PATH
    }

    fn request_body(&self, item: &WorkItem, stream: bool) -> Vec<u8> {
        let prompt = item.prompt_text();
        let text = prompt.len() + self.model.len();
        let request = ResponsesRequest {
            model: Cow::Borrowed(&self.model),
            input: ResponsesInput::Text(prompt.into()),
            instructions: None,
            max_output_tokens: Some(item.max_tokens),
            stream,
        };
        super::json_body(&request, text)
    }

    /// Reads the events that carry what is measured, by their `event:` name: text
    /// deltas, the closing `response.completed` or `response.incomplete` (with the
    /// usage), and errors; the others (`response.created`, item and part events, types
    /// added later) are passed over.
    fn stream_event(&self, event: SseEvent<'_>) -> Result<EventSummary, String> {
        if !matches!(
            event.event,
            "response.output_text.delta"
                | "response.completed"
                | "response.incomplete"
                | "response.failed"
                | "error"
        ) {
            return Ok(EventSummary::default());
        }
        if event.event == "response.failed" {
            return Err(format!(
                "the response failed: {}",
                super::excerpt(event.data)
            ));
        }
        // The event's name says what it is, so each is read straight into the little
        // that is measured of it.
        Ok(match event.event {
            "response.output_text.delta" => {
                let text: OutputDelta = super::read_named_event(event)?;
                EventSummary {
                    content_chunks: u32::from(!text.delta.is_empty()),
                    ..EventSummary::default()
                }
            }
            "error" => {
                let error: ErrorEvent = super::read_named_event(event)?;
                return Err(format!("error event: {}", error.message));
            }
            _ => {
                let end: Closing = super::read_named_event(event)?;
                EventSummary {
                    output_tokens: end.response.usage.map(|u| u.output_tokens),
                    cached_tokens: end
                        .response
                        .usage
                        .map(|u| u.input_tokens_details.cached_tokens),
                    done: true,
                    ..EventSummary::default()
                }
            }
        })
    }

    fn whole_body(&self, body: &[u8]) -> Result<BodyUsage, String> {
        let response: UsageOf<ResponsesUsage> = super::read_body(body, "response")?;
        let usage = response
            .usage
            .ok_or_else(|| super::without_usage("response", body))?;
        Ok(BodyUsage {
            output_tokens: usage.output_tokens,
            cached_tokens: usage.input_tokens_details.cached_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(name: &'a str, data: &'a str) -> SseEvent<'a> {
        SseEvent { event: name, data }
    }

    #[test]
    fn reads_deltas_the_closing_usage_and_errors() {
        let a = OpenAiResponses { model: "m".into() };
        let delta = r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":" hi","logprobs":[],"sequence_number":4}"#;
        assert_eq!(
            a.stream_event(event("response.output_text.delta", delta))
                .unwrap()
                .content_chunks,
            1
        );
        let done = r#"{"type":"response.incomplete","sequence_number":9,"response":{"id":"resp_1","object":"response","created_at":1,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"m","output":[],"usage":{"input_tokens":2048,"input_tokens_details":{"cached_tokens":1920},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":2053}}}"#;
        let summary = a.stream_event(event("response.incomplete", done)).unwrap();
        assert_eq!(
            (summary.output_tokens, summary.cached_tokens, summary.done),
            (Some(5), Some(1920), true)
        );
        assert_eq!(
            a.stream_event(event("response.created", "{}")).unwrap(),
            EventSummary::default()
        );
        let err = r#"{"type":"error","code":"server_error","message":"boom","param":null,"sequence_number":3}"#;
        assert_eq!(
            a.stream_event(event("error", err)).unwrap_err(),
            "error event: boom"
        );
    }

    #[test]
    fn a_reasoning_models_output_items_do_not_fail_the_measurement() {
        let a = OpenAiResponses { model: "m".into() };
        let response = r#"{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"o","output":[{"type":"reasoning","id":"rs_1","summary":[]},{"type":"function_call","id":"fc_1","call_id":"c","name":"f","arguments":"{}"},{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[]}],"usage":{"input_tokens":10,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":17}}"#;
        let usage = a.whole_body(response.as_bytes()).unwrap();
        assert_eq!((usage.output_tokens, usage.cached_tokens), (7, 0));
        let done =
            format!(r#"{{"type":"response.completed","sequence_number":9,"response":{response}}}"#);
        let summary = a.stream_event(event("response.completed", &done)).unwrap();
        assert_eq!((summary.output_tokens, summary.done), (Some(7), true));
    }
}
