//! The client side of Anthropic Messages.

use super::{BodyUsage, EventSummary, UsageOf, WireAdapter};
use crate::wire::anthropic::{
    Block, Content, MESSAGES_PATH, Message, MessagesRequest, MessagesUsage, StreamEvent,
};
use crate::wire::content::CacheControl;
use crate::wire::sse::SseEvent;
use crate::workload::WorkItem;
use std::borrow::Cow;

pub struct AnthropicMessages {
    pub model: String,
}

impl WireAdapter for AnthropicMessages {
    fn path(&self) -> &'static str {
        MESSAGES_PATH
    }

    fn request_body(&self, item: &WorkItem, stream: bool) -> Vec<u8> {
        let (content, prompt) = content(item);
        let request = MessagesRequest {
            model: Cow::Borrowed(&self.model),
            max_tokens: item.max_tokens,
            messages: vec![Message {
                role: "user".into(),
                content,
            }],
            system: None,
            stream,
            stop_sequences: None,
            temperature: None,
            metadata: None,
        };
        super::json_body(&request, prompt + self.model.len())
    }

    /// Reads the events that carry what is measured, by their `event:` name as the SDKs
    /// dispatch; others (`ping`, block start and stop, event types added later) are
    /// passed over.
    fn stream_event(&self, event: SseEvent<'_>) -> Result<EventSummary, String> {
        if !matches!(
            event.event,
            "message_start" | "content_block_delta" | "message_delta" | "message_stop" | "error"
        ) {
            return Ok(EventSummary::default());
        }
        let parsed: StreamEvent = super::read_named_event(event)?;
        Ok(match parsed {
            StreamEvent::MessageStart { message } => EventSummary {
                cached_tokens: Some(message.usage.cache_read_input_tokens),
                ..EventSummary::default()
            },
            StreamEvent::ContentBlockDelta { delta, .. } => EventSummary {
                content_chunks: u32::from(!delta.text.is_empty()),
                ..EventSummary::default()
            },
            StreamEvent::MessageDelta { usage, .. } => EventSummary {
                output_tokens: Some(usage.output_tokens),
                ..EventSummary::default()
            },
            StreamEvent::MessageStop => EventSummary {
                done: true,
                ..EventSummary::default()
            },
            StreamEvent::Error { error } => {
                return Err(format!("error event: {}: {}", error.kind, error.message));
            }
            _ => EventSummary::default(),
        })
    }

    fn whole_body(&self, body: &[u8]) -> Result<BodyUsage, String> {
        // Read for its usage only, as the OpenAI adapters read theirs: the content
        // blocks are checked as JSON, not built.
        let message: UsageOf<MessagesUsage> = super::read_body(body, "message")?;
        let usage = message
            .usage
            .ok_or_else(|| super::without_usage("message", body))?;
        Ok(BodyUsage {
            output_tokens: usage.output_tokens,
            cached_tokens: usage.cache_read_input_tokens,
        })
    }
}

/// The prompt as a string, or, with a shared prefix, as two text blocks of which the
/// first (the prefix) is a cache breakpoint: Anthropic caches only what is marked. With
/// the prompt's length in bytes.
fn content(item: &WorkItem) -> (Content<'static>, usize) {
    let (prefix, own) = item.prompt_parts();
    let bytes = prefix.len() + own.len();
    if prefix.is_empty() {
        return (Content::Text(own.into()), bytes);
    }
    let prefix = Block {
        cache_control: Some(CacheControl::ephemeral()),
        ..Block::text(prefix)
    };
    (Content::Blocks(vec![prefix, Block::text(own)]), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(name: &'a str, data: &'a str) -> SseEvent<'a> {
        SseEvent { event: name, data }
    }

    #[test]
    fn reads_deltas_usage_stop_and_errors() {
        let a = AnthropicMessages { model: "m".into() };
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" hi"}}"#;
        assert_eq!(
            a.stream_event(event("content_block_delta", delta))
                .unwrap()
                .content_chunks,
            1
        );
        let usage = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}"#;
        assert_eq!(
            a.stream_event(event("message_delta", usage))
                .unwrap()
                .output_tokens,
            Some(9)
        );
        assert!(
            a.stream_event(event("message_stop", r#"{"type":"message_stop"}"#))
                .unwrap()
                .done
        );
        assert_eq!(
            a.stream_event(event("ping", "{}")).unwrap(),
            EventSummary::default()
        );
        let err = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            a.stream_event(event("error", err)).unwrap_err(),
            "error event: overloaded_error: Overloaded"
        );
    }

    #[test]
    fn a_whole_message_is_read_for_its_usage() {
        let a = AnthropicMessages { model: "m".into() };
        let body = |usage: &str| {
            format!(
                r#"{{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{{"type":"text","text":"Hi \"there\""}}],"stop_reason":"end_turn","stop_sequence":null{usage}}}"#
            )
        };
        let read = |output_tokens, cached_tokens| {
            Ok(BodyUsage {
                output_tokens,
                cached_tokens,
            })
        };
        let cached = body(
            r#","usage":{"input_tokens":16,"output_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":8}"#,
        );
        assert_eq!(a.whole_body(cached.as_bytes()), read(9, 8));
        let without = body("");
        assert_eq!(
            a.whole_body(without.as_bytes()),
            Err(format!("message without usage: {}", &without[..120]))
        );
        // Cache counts sent as `null`, as some compatible proxies do: none.
        let nulls = body(
            r#","usage":{"input_tokens":16,"output_tokens":9,"cache_creation_input_tokens":null,"cache_read_input_tokens":null}"#,
        );
        assert_eq!(a.whole_body(nulls.as_bytes()), read(9, 0));
        // A body that is not JSON throughout is refused, though its usage is whole.
        let broken = cached.replace(r#""content":["#, r#""content":[,"#);
        assert!(
            a.whole_body(broken.as_bytes())
                .unwrap_err()
                .starts_with("unreadable message"),
        );
    }
}
