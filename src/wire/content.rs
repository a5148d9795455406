//! Message content as both providers accept it: a plain string, or a list of typed
//! parts (`[{"type": "text", "text": "…"}]`, as SDKs and frameworks such as GuideLLM
//! and LangChain send it). Text parts (`text`, and the Responses API's `input_text`)
//! carry text; image parts (`image_url`, `image`, `input_image`) are told apart so a
//! server can charge for them; others (tool calls and results) are carried along.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Message content: a plain string, or a list of content parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    #[serde(borrow)]
    Blocks(Vec<Block<'a>>),
}

/// The part types that carry an image, in OpenAI Chat, Anthropic and the Responses API.
const IMAGE_KINDS: &[&str] = &["image_url", "image", "input_image"];

impl Content<'_> {
    /// The text of the content (text blocks only).
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Content::Text(t) => vec![t.as_ref()],
            Content::Blocks(blocks) => blocks.iter().filter_map(|b| b.text.as_deref()).collect(),
        }
    }

    /// How many image parts the content holds.
    pub fn images(&self) -> usize {
        match self {
            Content::Text(_) => 0,
            Content::Blocks(blocks) => blocks.iter().filter(|b| b.is_image()).count(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    /// Anthropic's cache breakpoint: the prompt up to and including this part may be
    /// cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

impl<'a> Block<'a> {
    /// A text part.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Block<'a> {
        Block {
            kind: "text".into(),
            text: Some(text.into()),
            cache_control: None,
        }
    }

    pub fn is_image(&self) -> bool {
        IMAGE_KINDS.contains(&self.kind.as_ref())
    }
}

/// `{"type": "ephemeral"}`, with an optional `ttl` (`"5m"`, `"1h"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

impl CacheControl {
    pub fn ephemeral() -> CacheControl {
        CacheControl {
            kind: "ephemeral".into(),
            ttl: None,
        }
    }
}
