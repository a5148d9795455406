//! The client side of OpenAI's legacy Completions (`api = "completions"`).

use super::openai::{read_event, read_whole};
use super::{BodyUsage, EventSummary, WireAdapter};
use crate::wire::completions::{COMPLETIONS_PATH, CompletionRequest, Prompt, TextCompletion};
use crate::wire::openai::StreamOptions;
use crate::wire::sse::SseEvent;
use crate::workload::WorkItem;
use std::borrow::Cow;

pub struct OpenAiCompletions {
    pub model: String,
    /// Ask for exactly `max_tokens` tokens (`ignore_eos`, `min_tokens`).
    pub exact_length: bool,
}

impl WireAdapter for OpenAiCompletions {
    fn path(&self) -> &'static str {
        COMPLETIONS_PATH
    }

    fn request_body(&self, item: &WorkItem, stream: bool) -> Vec<u8> {
        let prompt = item.prompt_text();
        let text = prompt.len() + self.model.len();
        let request = CompletionRequest {
            model: Cow::Borrowed(&self.model),
            prompt: Prompt::One(prompt.into()),
            max_tokens: Some(item.max_tokens),
            stream,
            stream_options: StreamOptions::usage_if_streamed(stream),
            ignore_eos: self.exact_length.then_some(true),
            min_tokens: self.exact_length.then_some(item.max_tokens),
        };
        super::json_body(&request, text)
    }

    fn stream_event(&self, event: SseEvent<'_>) -> Result<EventSummary, String> {
        read_event(event, |chunk: TextCompletion| EventSummary {
            content_chunks: chunk.choices.iter().filter(|c| !c.text.is_empty()).count() as u32,
            output_tokens: chunk.usage.totals().map(|u| u.completion_tokens),
            cached_tokens: chunk.usage.totals().map(|u| u.cached_tokens()),
            done: false,
        })
    }

    fn whole_body(&self, body: &[u8]) -> Result<BodyUsage, String> {
        read_whole(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> SseEvent<'_> {
        SseEvent {
            event: "message",
            data,
        }
    }

    #[test]
    fn reads_text_usage_done_and_error_events() {
        let a = OpenAiCompletions {
            model: "m".into(),
            exact_length: false,
        };
        let text = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":" hi","index":0,"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(a.stream_event(event(text)).unwrap().content_chunks, 1);
        let finish = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}]}"#;
        assert_eq!(a.stream_event(event(finish)).unwrap().content_chunks, 0);
        let usage = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7}}"#;
        assert_eq!(a.stream_event(event(usage)).unwrap().output_tokens, Some(5));
        assert!(a.stream_event(event("[DONE]")).unwrap().done);
        let err = a
            .stream_event(event(
                r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
            ))
            .unwrap_err();
        assert_eq!(err, "error event: boom");
        let whole = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":" a b","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}"#;
        assert_eq!(a.whole_body(whole.as_bytes()).unwrap().output_tokens, 2);
    }
}
