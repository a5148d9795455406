//! OpenAI Chat Completions (`POST /v1/chat/completions`), as documented and as the
//! official SDKs parse it. String fields borrow where they can (`Cow`), so parsing a
//! streamed chunk allocates only for text that contains JSON escapes.

use super::content::Content;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    pub messages: Vec<ChatMessage<'a>>,
    /// Current name of the output cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Deprecated name, still sent by many clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// vLLM-style extension: keep generating past the end-of-sequence token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    /// vLLM-style extension: generate at least this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    /// How many choices to generate (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    // Other fields the API takes (`tools`, `tool_choice`, `response_format`, `stop`,
    // `seed`, `temperature`, …) shape the text, not its timing: read past.
}

impl ChatRequest<'_> {
    /// The output cap under either name; the current name wins when both are sent.
    pub fn output_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options.is_some_and(|o| o.include_usage)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    /// A string, or a list of parts (`{"type": "text", "text": …}`), as the API accepts;
    /// `null` on an assistant message that only calls tools.
    #[serde(default, borrow)]
    pub content: Option<Content<'a>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

impl StreamOptions {
    /// What a client asks for on a stream (nothing otherwise): the usage chunk, since the
    /// server's own token count beats counting chunks.
    pub fn usage_if_streamed(stream: bool) -> Option<StreamOptions> {
        stream.then_some(StreamOptions {
            include_usage: true,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// What of the prompt was read from the provider's cache; absent or `null` from
    /// servers that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: None,
        }
    }

    /// With `cached_tokens` of the prompt read from cache.
    pub fn with_cached(self, cached_tokens: u32) -> Usage {
        Usage {
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens }),
            ..self
        }
    }

    /// Prompt tokens read from cache (0 when the server does not say).
    pub fn cached_tokens(&self) -> u32 {
        self.prompt_tokens_details.map_or(0, |d| d.cached_tokens)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
}

/// Non-streaming response body (`"object": "chat.completion"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    pub created: u64,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    pub choices: Vec<CompletionChoice<'a>>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionChoice<'a> {
    pub index: u32,
    #[serde(borrow)]
    pub message: AssistantMessage<'a>,
    /// Always `null` from the mock; present because the SDKs expect the key.
    pub logprobs: Option<serde_json::Value>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssistantMessage<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub refusal: Option<Cow<'a, str>>,
}

/// One streamed chunk (`"object": "chat.completion.chunk"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChunk<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    pub created: u64,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Borrowed when writing (no allocation per chunk), owned when parsing.
    #[serde(borrow)]
    pub choices: Cow<'a, [ChunkChoice<'a>]>,
    /// With `include_usage` every chunk carries `"usage": null` and the extra final chunk
    /// the totals; without it the key is absent.
    #[serde(default, skip_serializing_if = "UsageField::is_absent")]
    pub usage: UsageField,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    #[serde(borrow)]
    pub delta: Delta<'a>,
    pub logprobs: Option<serde_json::Value>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub role: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub content: Option<Cow<'a, str>>,
}

/// The three states of a chunk's `usage` key: absent, `null`, or the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageField {
    #[default]
    Absent,
    Null,
    Totals(Usage),
}

impl UsageField {
    pub(super) fn is_absent(&self) -> bool {
        matches!(self, UsageField::Absent)
    }

    pub fn totals(&self) -> Option<Usage> {
        match self {
            UsageField::Totals(u) => Some(*u),
            _ => None,
        }
    }
}

impl Serialize for UsageField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UsageField::Totals(u) => u.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for UsageField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<Usage>::deserialize(d)?.map_or(UsageField::Null, UsageField::Totals))
    }
}

/// The stream's terminator, sent as `data: [DONE]`.
pub const DONE: &str = "[DONE]";

/// Error envelope: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    pub error: ErrorBody<'a>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub param: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_field_round_trips_its_three_states() {
        let chunk = |usage| ChatChunk {
            id: "c".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: Cow::Borrowed(&[]),
            usage,
        };
        let absent = serde_json::to_string(&chunk(UsageField::Absent)).unwrap();
        assert!(!absent.contains("usage"), "{absent}");
        let null = serde_json::to_string(&chunk(UsageField::Null)).unwrap();
        assert!(null.ends_with(r#""usage":null}"#), "{null}");
        let totals = serde_json::to_string(&chunk(UsageField::Totals(Usage::new(3, 4)))).unwrap();
        assert!(
            totals
                .contains(r#""usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}"#)
        );

        let back: ChatChunk = serde_json::from_str(&absent).unwrap();
        assert_eq!(back.usage, UsageField::Absent);
        let back: ChatChunk = serde_json::from_str(&null).unwrap();
        assert_eq!(back.usage, UsageField::Null);
        let back: ChatChunk = serde_json::from_str(&totals).unwrap();
        assert_eq!(back.usage.totals(), Some(Usage::new(3, 4)));
    }

    #[test]
    fn request_accepts_either_name_of_the_output_cap() {
        let old: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[],"max_tokens":5}"#).unwrap();
        assert_eq!(old.output_cap(), Some(5));
        let both: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[],"max_tokens":5,"max_completion_tokens":9}"#,
        )
        .unwrap();
        assert_eq!(both.output_cap(), Some(9));
    }

    #[test]
    fn cached_tokens_are_read_when_reported_and_zero_otherwise() {
        let usage: Usage = serde_json::from_str(
            r#"{"prompt_tokens":2048,"completion_tokens":1,"total_tokens":2049,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0}}"#,
        )
        .unwrap();
        assert_eq!(usage.cached_tokens(), 1920);
        let vllm: Usage = serde_json::from_str(
            r#"{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"prompt_tokens_details":null}"#,
        )
        .unwrap();
        assert_eq!(vllm.cached_tokens(), 0);
    }
}
