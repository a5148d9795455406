//! Message content as both providers accept it: a plain string, or a list of typed
//! parts (`[{"type": "text", "text": "…"}]`, as SDKs and frameworks such as GuideLLM
//! send it). Only text parts count; others (images, tool results) are carried along.

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

impl Content<'_> {
    /// The text of the content (text blocks only).
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Content::Text(t) => vec![t.as_ref()],
            Content::Blocks(blocks) => blocks.iter().filter_map(|b| b.text.as_deref()).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
}
