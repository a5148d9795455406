//! Anthropic Messages (`POST /v1/messages`), as documented and as the official SDKs
//! parse it: the request, the whole message, the streamed events and the error body.

pub use super::content::{Block, Content};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const MESSAGES_PATH: &str = "/v1/messages";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    pub max_tokens: u32,
    pub messages: Vec<Message<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content<'a>>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Content<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesUsage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Absent or `null` (as some Anthropic-compatible proxies send it): none.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cache_creation_input_tokens: u32,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cache_read_input_tokens: u32,
}

/// A count that may be `null`, read as 0.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.unwrap_or(0))
}

impl MessagesUsage {
    pub fn new(input_tokens: u32, output_tokens: u32) -> MessagesUsage {
        MessagesUsage {
            input_tokens,
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }
}

/// The whole message (`"type": "message"`), also the `message` of `message_start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageResponse<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Vec<Block<'a>>,
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
    pub usage: MessagesUsage,
}

/// A streamed event's data; the SSE `event:` line carries the same name as `type`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent<'a> {
    MessageStart {
        #[serde(borrow)]
        message: MessageResponse<'a>,
    },
    ContentBlockStart {
        index: u32,
        #[serde(borrow)]
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        #[serde(borrow)]
        delta: TextDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: OutputUsage,
    },
    MessageStop,
    Error {
        #[serde(borrow)]
        error: MessagesErrorBody<'a>,
    },
}

impl StreamEvent<'_> {
    /// The SSE event name, the same as the data's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::Ping => "ping",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextDelta<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MessageDeltaBody {
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<()>,
}

/// `message_delta`'s usage: the cumulative output token count.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct OutputUsage {
    pub output_tokens: u32,
}

/// Error body: `{"type": "error", "error": {"type", "message"}, "request_id"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesErrorEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub error: MessagesErrorBody<'a>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesErrorBody<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// The error `type` Anthropic sends with each status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_documented() {
        let delta = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: TextDelta {
                kind: "text_delta".into(),
                text: " hi".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" hi"}}"#
        );
        let end = StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(StopReason::MaxTokens),
                stop_sequence: None,
            },
            usage: OutputUsage { output_tokens: 7 },
        };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":7}}"#
        );
        assert_eq!(
            serde_json::to_string(&StreamEvent::Ping).unwrap(),
            r#"{"type":"ping"}"#
        );
    }

    #[test]
    fn content_is_a_string_or_blocks() {
        let r: MessagesRequest = serde_json::from_str(
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a b"},{"role":"user","content":[{"type":"text","text":"c"}]}],"system":"s"}"#,
        )
        .unwrap();
        assert_eq!(r.messages[0].content.texts(), ["a b"]);
        assert_eq!(r.messages[1].content.texts(), ["c"]);
        assert_eq!(r.system.unwrap().texts(), ["s"]);
    }
}
