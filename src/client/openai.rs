//! The client side of OpenAI Chat Completions.

use super::{BodyUsage, EventSummary, UsageOf, WireAdapter};
use crate::wire::openai::{CHAT_COMPLETIONS_PATH, ChatChunk, DONE, ErrorEnvelope, Usage};
use crate::wire::sse::SseEvent;
use crate::workload::WorkItem;
use serde::Deserialize;

pub struct OpenAiChat {
    pub model: String,
    /// Ask for exactly `max_tokens` tokens (`ignore_eos`, `min_tokens`).
    pub exact_length: bool,
}

impl WireAdapter for OpenAiChat {
    fn path(&self) -> &'static str {
        CHAT_COMPLETIONS_PATH
    }

    fn request_body(&self, item: &WorkItem, stream: bool) -> Vec<u8> {
        let prompt = item.prompt_text();
        self.write_request(&prompt, item.max_tokens, stream)
    }

    fn stream_event(&self, event: SseEvent<'_>) -> Result<EventSummary, String> {
        read_event(event, |chunk: ChatChunk| EventSummary {
            content_chunks: chunk
                .choices
                .iter()
                .filter(|c| c.delta.content.as_deref().is_some_and(|t| !t.is_empty()))
                .count() as u32,
            output_tokens: chunk.usage.totals().map(|u| u.completion_tokens),
            cached_tokens: chunk.usage.totals().map(|u| u.cached_tokens()),
            done: false,
        })
    }

    fn whole_body(&self, body: &[u8]) -> Result<BodyUsage, String> {
        read_whole(body)
    }
}

impl OpenAiChat {
    /// The [`ChatRequest`](crate::wire::openai::ChatRequest) of one user message, written as `serde_json` writes it
    /// ([`super::JsonBody`]; the tests compare the two): its fields in the type's order,
    /// the `None`s left out.
    fn write_request(&self, prompt: &str, max_tokens: u32, stream: bool) -> Vec<u8> {
        let mut body = super::JsonBody::with_room(prompt.len() + self.model.len());
        body.raw("{\"model\":").string(&self.model);
        body.raw(",\"messages\":[{\"role\":\"user\",\"content\":")
            .string(prompt);
        body.raw("}],\"max_completion_tokens\":").number(max_tokens);
        body.raw(if stream {
            ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"
        } else {
            ",\"stream\":false"
        });
        if self.exact_length {
            body.raw(",\"ignore_eos\":true,\"min_tokens\":")
                .number(max_tokens);
        }
        body.raw("}");
        body.into_bytes()
    }
}

/// Reads one event of an OpenAI stream: `[DONE]`, a chunk of type `T` (summarised by
/// `summary`), or an error envelope sent mid-stream.
pub(super) fn read_event<'a, T: Deserialize<'a>>(
    event: SseEvent<'a>,
    summary: impl FnOnce(T) -> EventSummary,
) -> Result<EventSummary, String> {
    if event.data == DONE {
        return Ok(EventSummary {
            done: true,
            ..EventSummary::default()
        });
    }
    let chunk = serde_json::from_str(event.data).map_err(|e| {
        match serde_json::from_str::<ErrorEnvelope>(event.data) {
            Ok(envelope) => format!("error event: {}", envelope.error.message),
            Err(_) => format!("unreadable chunk ({e}): {}", super::excerpt(event.data)),
        }
    })?;
    Ok(summary(chunk))
}

/// Reads a whole OpenAI response (a chat or a text completion) into its token counts.
pub(super) fn read_whole(body: &[u8]) -> Result<BodyUsage, String> {
    let completion: UsageOf<Usage> = super::read_body(body, "completion")?;
    completion
        .usage
        .map(|u| BodyUsage {
            output_tokens: u.completion_tokens,
            cached_tokens: u.cached_tokens(),
        })
        .ok_or_else(|| super::without_usage("completion", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::content::Content;
    use crate::wire::openai::{ChatMessage, ChatRequest, StreamOptions};
    use std::borrow::Cow;

    fn event(data: &str) -> SseEvent<'_> {
        SseEvent {
            event: "message",
            data,
        }
    }

    /// The body written piece by piece is byte for byte what serde_json writes for the
    /// wire type, for prompts that need escaping and prompts that do not.
    #[test]
    fn the_request_is_what_serde_json_writes_for_the_wire_type() {
        let prompts = [
            "item-7 hotel oscar victor",
            "",
            "quote \" backslash \\ slash / tab \t newline \n bell \u{7} del \u{7f}",
            "unicode: \u{e9}t\u{e9}, \u{4e2d}\u{6587}, \u{1f600}; \u{2028} line separator",
            "\u{0}\u{1f}",
        ];
        for model in ["m", "gpt-4o-mini", "we\"ird\\model"] {
            for exact_length in [false, true] {
                let adapter = OpenAiChat {
                    model: model.into(),
                    exact_length,
                };
                for prompt in prompts {
                    for (stream, max_tokens) in [(false, 16), (true, 4_000_000_000)] {
                        let request = ChatRequest {
                            model: Cow::Borrowed(model),
                            messages: vec![ChatMessage {
                                role: "user".into(),
                                content: Some(Content::Text(prompt.into())),
                            }],
                            max_completion_tokens: Some(max_tokens),
                            max_tokens: None,
                            stream,
                            stream_options: StreamOptions::usage_if_streamed(stream),
                            ignore_eos: exact_length.then_some(true),
                            min_tokens: exact_length.then_some(max_tokens),
                            n: None,
                        };
                        let written = adapter.write_request(prompt, max_tokens, stream);
                        let expected = serde_json::to_vec(&request).unwrap();
                        assert_eq!(
                            String::from_utf8(written).unwrap(),
                            String::from_utf8(expected).unwrap()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn reads_content_usage_done_and_error_events() {
        let a = OpenAiChat {
            model: "m".into(),
            exact_length: false,
        };
        let content = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" hi"},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(a.stream_event(event(content)).unwrap().content_chunks, 1);
        let role = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(a.stream_event(event(role)).unwrap().content_chunks, 0);
        let usage = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7}}"#;
        assert_eq!(a.stream_event(event(usage)).unwrap().output_tokens, Some(5));
        assert!(a.stream_event(event("[DONE]")).unwrap().done);
        let err = a
            .stream_event(event(
                r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
            ))
            .unwrap_err();
        assert_eq!(err, "error event: boom");
        assert!(
            a.stream_event(event("{not json"))
                .unwrap_err()
                .starts_with("unreadable chunk")
        );
    }

    #[test]
    fn a_whole_body_is_read_for_its_usage() {
        let a = OpenAiChat {
            model: "m".into(),
            exact_length: false,
        };
        let body = |usage: &str| {
            format!(
                r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hi \"there\"","refusal":null}},"logprobs":null,"finish_reason":"stop"}}]{usage}}}"#
            )
        };
        let cached = body(
            r#","usage":{"prompt_tokens":16,"completion_tokens":9,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":8}}"#,
        );
        assert_eq!(
            a.whole_body(cached.as_bytes()),
            Ok(BodyUsage {
                output_tokens: 9,
                cached_tokens: 8
            })
        );
        for without in [body(""), body(r#","usage":null"#)] {
            assert_eq!(
                a.whole_body(without.as_bytes()),
                Err(format!("completion without usage: {}", &without[..120]))
            );
        }
        let cut = &cached[..cached.len() - 1];
        assert!(
            a.whole_body(cut.as_bytes())
                .unwrap_err()
                .starts_with("unreadable completion (EOF while parsing an object")
        );
    }
}
