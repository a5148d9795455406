//! OpenAI's legacy Completions (`POST /v1/completions`): a bare prompt in, text out.
//! Still what vLLM, TGI and llama.cpp benchmarks often drive, since it skips the chat
//! template. Usage, the error envelope and `[DONE]` are those of Chat Completions.

use super::openai::{FinishReason, UsageField};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const COMPLETIONS_PATH: &str = "/v1/completions";

/// OpenAI's `max_tokens` when a legacy request leaves it out.
pub const DEFAULT_MAX_TOKENS: u32 = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub prompt: Prompt<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<super::openai::StreamOptions>,
    /// vLLM-style extension: keep generating past the end-of-sequence token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    /// vLLM-style extension: generate at least this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
}

impl CompletionRequest<'_> {
    pub fn include_usage(&self) -> bool {
        self.stream_options.is_some_and(|o| o.include_usage)
    }
}

/// A prompt as text, or a batch of texts (each gets its own choice).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt<'a> {
    #[serde(borrow)]
    One(Cow<'a, str>),
    #[serde(borrow)]
    Batch(Vec<Cow<'a, str>>),
}

/// A whole response, and each streamed chunk: both are `"object": "text_completion"`.
/// A whole response carries the usage totals; chunks carry it as a chat chunk does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextCompletion<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    pub created: u64,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Borrowed when writing (no allocation per chunk), owned when parsing.
    #[serde(borrow)]
    pub choices: Cow<'a, [TextChoice<'a>]>,
    #[serde(default, skip_serializing_if = "UsageField::is_absent")]
    pub usage: UsageField,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextChoice<'a> {
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    pub index: u32,
    /// Always `null` from the mock; present because the SDKs expect the key.
    pub logprobs: Option<serde_json::Value>,
    pub finish_reason: Option<FinishReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_text_or_a_batch() {
        let one: CompletionRequest =
            serde_json::from_str(r#"{"model":"m","prompt":"hi there"}"#).unwrap();
        assert!(matches!(one.prompt, Prompt::One(ref p) if p == "hi there"));
        assert_eq!(one.max_tokens, None);
        let batch: CompletionRequest =
            serde_json::from_str(r#"{"model":"m","prompt":["a","b"],"max_tokens":3}"#).unwrap();
        assert!(matches!(batch.prompt, Prompt::Batch(ref p) if p.len() == 2));
    }
}
