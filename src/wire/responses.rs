//! OpenAI Responses (`POST /v1/responses`), OpenAI's recommended API, as documented and
//! as the official SDK parses it: the request, the whole `response` object, and the
//! typed events of a stream (each SSE frame names its event, and every event carries a
//! `sequence_number`). Usage and errors are reported as the API does; the error
//! envelope of a refused request is Chat Completions'.

use super::content::Content;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const RESPONSES_PATH: &str = "/v1/responses";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponsesRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string, or a list of input items (messages; others are carried along).
    #[serde(borrow)]
    pub input: ResponsesInput<'a>,
    /// A system (developer) message put before the input.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    // `tools`, `tool_choice`, `text` (the output format), `reasoning`, `store`, … shape
    // the text, not its timing: read past.
}

/// The request's `input`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponsesInput<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    #[serde(borrow)]
    Items(Vec<InputItem<'a>>),
}

/// One input item: a message (`{"role", "content"}`, with or without `"type":
/// "message"`), or another kind (a function call's output…) whose content is not counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputItem<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub role: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content<'a>>,
}

/// `status` of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

/// The `response` object: the whole body, and the one carried by the lifecycle events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseObject<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    pub created_at: u64,
    pub status: ResponseStatus,
    /// `{"reason": "max_output_tokens"}` when the output cap cut the response.
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(default, borrow)]
    pub output: Vec<OutputMessage<'a>>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Constant fields the SDK's model requires.
    #[serde(default)]
    pub parallel_tool_calls: bool,
    #[serde(default = "auto", borrow)]
    pub tool_choice: Cow<'a, str>,
    #[serde(default)]
    pub tools: Vec<serde_json::Value>,
    /// Absent until the response has ended.
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
}

fn auto() -> Cow<'static, str> {
    Cow::Borrowed("auto")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    pub reason: IncompleteReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncompleteReason {
    MaxOutputTokens,
    ContentFilter,
}

/// An output item of type `message`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputMessage<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub status: ResponseStatus,
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(default, borrow)]
    pub content: Vec<OutputText<'a>>,
}

/// An `output_text` content part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputText<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    #[serde(default)]
    pub annotations: Vec<serde_json::Value>,
}

impl<'a> OutputText<'a> {
    pub fn new(text: impl Into<Cow<'a, str>>) -> OutputText<'a> {
        OutputText {
            kind: "output_text".into(),
            text: text.into(),
            annotations: Vec::new(),
        }
    }
}

/// `usage`: `input_tokens` counts the cached ones too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    pub input_tokens: u32,
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u32,
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u32,
}

impl ResponsesUsage {
    pub fn new(input_tokens: u32, cached_tokens: u32, output_tokens: u32) -> ResponsesUsage {
        ResponsesUsage {
            input_tokens,
            input_tokens_details: InputTokensDetails { cached_tokens },
            output_tokens,
            output_tokens_details: OutputTokensDetails::default(),
            total_tokens: input_tokens + output_tokens,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(default)]
    pub cached_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u32,
}

/// A streamed event's data; the SSE `event:` line carries the same name as `type`.
/// Every event carries its `sequence_number`; the text events name the output item
/// (`item_id`, `output_index`) and the part (`content_index`) they belong to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponsesEvent<'a> {
    #[serde(rename = "response.created", borrow)]
    Created(ResponseSnapshot<'a>),
    #[serde(rename = "response.in_progress", borrow)]
    InProgress(ResponseSnapshot<'a>),
    #[serde(rename = "response.output_item.added", borrow)]
    OutputItemAdded(ItemEvent<'a>),
    #[serde(rename = "response.content_part.added", borrow)]
    ContentPartAdded(PartEvent<'a>),
    #[serde(rename = "response.output_text.delta", borrow)]
    OutputTextDelta(TextEvent<'a>),
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        output_index: u32,
        content_index: u32,
        /// The part's whole text.
        #[serde(borrow)]
        text: Cow<'a, str>,
        #[serde(default)]
        logprobs: Vec<serde_json::Value>,
        sequence_number: u64,
    },
    #[serde(rename = "response.content_part.done", borrow)]
    ContentPartDone(PartEvent<'a>),
    #[serde(rename = "response.output_item.done", borrow)]
    OutputItemDone(ItemEvent<'a>),
    /// The end of a response that ran its course, with its usage.
    #[serde(rename = "response.completed", borrow)]
    Completed(ResponseSnapshot<'a>),
    /// The end of a response cut by `max_output_tokens`, with its usage.
    #[serde(rename = "response.incomplete", borrow)]
    Incomplete(ResponseSnapshot<'a>),
    /// An error mid-stream.
    #[serde(rename = "error")]
    Error {
        #[serde(default, borrow)]
        code: Option<Cow<'a, str>>,
        #[serde(borrow)]
        message: Cow<'a, str>,
        #[serde(default, borrow)]
        param: Option<Cow<'a, str>>,
        sequence_number: u64,
    },
}

/// The lifecycle events' payload: the response as it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseSnapshot<'a> {
    #[serde(borrow)]
    pub response: ResponseObject<'a>,
    pub sequence_number: u64,
}

/// An output item added or done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemEvent<'a> {
    pub output_index: u32,
    #[serde(borrow)]
    pub item: OutputMessage<'a>,
    pub sequence_number: u64,
}

/// A content part added or done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartEvent<'a> {
    #[serde(borrow)]
    pub item_id: Cow<'a, str>,
    pub output_index: u32,
    pub content_index: u32,
    #[serde(borrow)]
    pub part: OutputText<'a>,
    pub sequence_number: u64,
}

/// A text delta.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextEvent<'a> {
    #[serde(borrow)]
    pub item_id: Cow<'a, str>,
    pub output_index: u32,
    pub content_index: u32,
    #[serde(borrow)]
    pub delta: Cow<'a, str>,
    #[serde(default)]
    pub logprobs: Vec<serde_json::Value>,
    pub sequence_number: u64,
}

impl ResponsesEvent<'_> {
    /// The SSE event name, the same as the data's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            ResponsesEvent::Created { .. } => "response.created",
            ResponsesEvent::InProgress { .. } => "response.in_progress",
            ResponsesEvent::OutputItemAdded { .. } => "response.output_item.added",
            ResponsesEvent::ContentPartAdded { .. } => "response.content_part.added",
            ResponsesEvent::OutputTextDelta { .. } => "response.output_text.delta",
            ResponsesEvent::OutputTextDone { .. } => "response.output_text.done",
            ResponsesEvent::ContentPartDone { .. } => "response.content_part.done",
            ResponsesEvent::OutputItemDone { .. } => "response.output_item.done",
            ResponsesEvent::Completed { .. } => "response.completed",
            ResponsesEvent::Incomplete { .. } => "response.incomplete",
            ResponsesEvent::Error { .. } => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_a_string_or_items_of_either_shape() {
        let text: ResponsesRequest =
            serde_json::from_str(r#"{"model":"m","input":"hi there"}"#).unwrap();
        assert!(matches!(text.input, ResponsesInput::Text(ref t) if t == "hi there"));
        let items: ResponsesRequest = serde_json::from_str(
            r#"{"model":"m","instructions":"be brief","max_output_tokens":5,"stream":true,
                "input":[{"role":"developer","content":"d"},
                         {"type":"message","role":"user","content":[{"type":"input_text","text":"a b"},{"type":"input_image","image_url":"data:"}]},
                         {"type":"function_call_output","call_id":"c","output":"{}"}],
                "tools":[{"type":"function","name":"f","parameters":{}}],"text":{"format":{"type":"json_object"}}}"#,
        )
        .unwrap();
        let ResponsesInput::Items(items) = items.input else {
            panic!("items")
        };
        assert_eq!(items.len(), 3);
        let user = items[1].content.as_ref().unwrap();
        assert_eq!((user.texts(), user.images()), (vec!["a b"], 1));
        assert!(items[2].content.is_none());
    }

    #[test]
    fn a_delta_event_serializes_as_the_sdk_reads_it() {
        let delta = ResponsesEvent::OutputTextDelta(TextEvent {
            item_id: "msg_1".into(),
            output_index: 0,
            content_index: 0,
            delta: " hi".into(),
            logprobs: Vec::new(),
            sequence_number: 4,
        });
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":" hi","logprobs":[],"sequence_number":4}"#
        );
    }
}
