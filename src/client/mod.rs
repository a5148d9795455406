//! Sending one work item and timing its response: the transport half of the client.
//!
//! What is specific to an API (request body, how to read a streamed event or a whole
//! body) lives in one [`WireAdapter`] per wire format; this file does the HTTP, the SSE
//! framing, the clock readings and the error classes, the same for every format.
//!
//! Below the recorder: it returns an [`Exchange`] and never records anything itself.
//! Reads the scenario's target and `[client]`, and the wire types.

mod anthropic;
mod completions;
mod error_class;
mod openai;
mod redact;
mod responses;
pub mod transport;

pub use anthropic::AnthropicMessages;
pub use completions::OpenAiCompletions;
pub use error_class::ErrorClass;
pub use openai::OpenAiChat;
pub use redact::{REDACTED, Redactor};
pub use responses::OpenAiResponses;

use crate::scenario::{ClientConfig, EnvName, HeaderSource, HttpLibrary, OpenAiApi, Target};
use crate::wire::sse::{SseEvent, SseParser};
use crate::workload::WorkItem;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::time::{Duration, Instant};
pub use transport::Sockets;
use transport::{Failure, HttpSettings, Response, Timeouts, Transport, VersionsSeen};

/// How much of an error body is kept as the error's message.
const ERROR_EXCERPT: usize = 200;

/// What one streamed event contributed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventSummary {
    /// Content chunks with non-empty text carried by the event.
    pub content_chunks: u32,
    /// Output token total, when the event reports usage.
    pub output_tokens: Option<u32>,
    /// The stream's own end marker (`[DONE]`, `message_stop`).
    pub done: bool,
    /// Prompt tokens read from the provider's cache, when the event reports them.
    pub cached_tokens: Option<u32>,
}

/// What a whole (non-streamed) body reports of its tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BodyUsage {
    pub output_tokens: u32,
    /// Prompt tokens read from the provider's cache (0 when it does not say).
    pub cached_tokens: u32,
}

/// One API's request and response shapes, as the client sees them.
pub trait WireAdapter: Send + Sync {
    /// Path appended to the target's base URL.
    fn path(&self) -> &'static str;
    fn request_body(&self, item: &WorkItem, stream: bool) -> Vec<u8>;
    /// Reads one SSE event; an `Err` is a protocol error (or an error event) with its message.
    fn stream_event(&self, event: SseEvent<'_>) -> Result<EventSummary, String>;
    /// Reads a whole (non-streamed) body into its token counts.
    fn whole_body(&self, body: &[u8]) -> Result<BodyUsage, String>;
}

/// What happened to one request, in clock readings; the recorder turns it into a record.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub sent: Instant,
    pub first_token: Option<Instant>,
    pub end: Instant,
    pub status: Option<u16>,
    pub output_tokens: u32,
    /// Non-empty content chunks received.
    pub content_chunks: u32,
    /// True when `output_tokens` was counted from content chunks because the server
    /// reported no usage.
    pub tokens_counted: bool,
    /// Prompt tokens the server read from its cache, as its usage reports them.
    pub cached_tokens: u32,
    pub error: Option<(ErrorClass, String)>,
    /// The server's `retry-after-ms` / `retry-after` hint, on a failed response.
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry`, which overrides the status.
    pub should_retry: Option<bool>,
    /// How long the attempt waited for a connection to be opened ([`Response::opened`]).
    pub connect: Option<Duration>,
}

impl Exchange {
    pub fn new(sent: Instant) -> Exchange {
        Exchange {
            sent,
            first_token: None,
            end: sent,
            status: None,
            output_tokens: 0,
            content_chunks: 0,
            tokens_counted: false,
            cached_tokens: 0,
            error: None,
            retry_after: None,
            should_retry: None,
            connect: None,
        }
    }

    /// True when the failure came after a successful status line: a stream cut or
    /// broken mid-way, which no SDK retries.
    pub fn mid_response(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The wire formats a target can speak; each has one adapter file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    OpenAiChat,
    OpenAiCompletions,
    OpenAiResponses,
    AnthropicMessages,
}

impl From<OpenAiApi> for WireFormat {
    fn from(api: OpenAiApi) -> WireFormat {
        match api {
            OpenAiApi::Chat => WireFormat::OpenAiChat,
            OpenAiApi::Completions => WireFormat::OpenAiCompletions,
            OpenAiApi::Responses => WireFormat::OpenAiResponses,
        }
    }
}

/// How to reach a target: where, with which headers, in which wire format.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base_url: String,
    headers: HeaderMap,
    /// The secret values among the headers, cut out of every message.
    secrets: Redactor,
    format: WireFormat,
    model: String,
    exact_length: bool,
    /// Certificate authorities trusted on top of the system's (`target.ca_file`).
    roots: Vec<CertificateDer<'static>>,
}

impl Endpoint {
    /// The embedded mock at `base_url`.
    pub fn mock(base_url: String, model: &str, api: OpenAiApi) -> Endpoint {
        Endpoint {
            base_url,
            headers: HeaderMap::new(),
            secrets: Redactor::default(),
            format: api.into(),
            model: model.to_string(),
            exact_length: false,
            roots: Vec::new(),
        }
    }

    /// A live target. Reads the API key from its environment variable now, so that a
    /// missing key fails before any traffic. The key is kept only in a header value
    /// marked sensitive, and no message ever includes it. A `ca_file` is read from
    /// `folder` (the scenario's) when relative.
    pub fn live(target: &Target, folder: &Path) -> Result<Endpoint, String> {
        let (base_url, format, extra) = match target {
            Target::Mock { .. } => return Err("the mock target has no live endpoint".into()),
            Target::Openai {
                base_url,
                headers,
                api,
                ..
            } => (base_url, WireFormat::from(*api), headers),
            Target::Anthropic {
                base_url, headers, ..
            } => (base_url, WireFormat::AnthropicMessages, headers),
        };
        let mut map = HeaderMap::new();
        let mut secrets = Redactor::default();
        for (name, source) in &extra.0 {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("target.headers: \"{name}\" is not a valid header name"))?;
            let value = header_value(&name, source)?;
            if value.is_sensitive() {
                secrets.add(value.to_str().unwrap_or_default());
            }
            map.insert(name, value);
        }
        if let Target::Anthropic {
            anthropic_version, ..
        } = target
        {
            let version = HeaderValue::try_from(anthropic_version.as_str())
                .map_err(|_| "target.anthropic_version is not valid header text".to_string())?;
            map.insert("anthropic-version", version);
        }
        if let Some(env) = target.api_key_env() {
            let key = read_env(env, "target.api_key_env", "the API key")?;
            secrets.add(&key);
            let (name, value) = match format {
                WireFormat::OpenAiChat
                | WireFormat::OpenAiCompletions
                | WireFormat::OpenAiResponses => ("authorization", format!("Bearer {key}")),
                WireFormat::AnthropicMessages => ("x-api-key", key),
            };
            map.insert(name, sensitive_value(value, env)?);
        }
        Ok(Endpoint {
            base_url: base_url.0.clone(),
            headers: map,
            secrets,
            format,
            model: target.model().to_string(),
            exact_length: target.ignore_eos(),
            roots: match target.ca_file() {
                Some(file) => file
                    .read(folder)
                    .map_err(|e| format!("target.ca_file: {e}"))?,
                None => Vec::new(),
            },
        })
    }

    /// The secrets this endpoint sends, to be cut from anything kept or shown.
    pub fn secrets(&self) -> &Redactor {
        &self.secrets
    }

    fn adapter(&self) -> Box<dyn WireAdapter> {
        let model = self.model.clone();
        match self.format {
            WireFormat::OpenAiChat => Box::new(OpenAiChat {
                model,
                exact_length: self.exact_length,
            }),
            WireFormat::OpenAiCompletions => Box::new(OpenAiCompletions {
                model,
                exact_length: self.exact_length,
            }),
            WireFormat::OpenAiResponses => Box::new(OpenAiResponses { model }),
            WireFormat::AnthropicMessages => Box::new(AnthropicMessages { model }),
        }
    }
}

/// How a strategy's client carries its requests: the HTTP library, whose sockets, and
/// whether it speaks HTTP/2 only (`[[strategy]]`'s `client`, `runtime` and `http2`).
#[derive(Debug, Clone, Copy)]
pub struct Carrier {
    pub library: HttpLibrary,
    pub sockets: Sockets,
    pub http2: bool,
}

pub struct Client {
    transport: Transport,
    /// The HTTP versions the responses came in.
    versions: VersionsSeen,
    url: String,
    stream: bool,
    adapter: Box<dyn WireAdapter>,
    secrets: Redactor,
    /// Bounds on what one response may make the client hold: `[client]`'s
    /// `max_event_bytes` and `max_body_bytes`.
    max_event_bytes: usize,
    max_body_bytes: usize,
}

impl Client {
    /// A client with its own connection pool, so each strategy starts cold and alike.
    pub fn new(
        endpoint: &Endpoint,
        config: &ClientConfig,
        stream: bool,
        carrier: Carrier,
    ) -> anyhow::Result<Client> {
        let adapter = endpoint.adapter();
        let url = format!(
            "{}{}",
            endpoint.base_url.trim_end_matches('/'),
            adapter.path()
        );
        let timeouts = Timeouts {
            connect: Duration::from_secs_f64(config.connect_timeout_s.0),
            total: Duration::from_secs_f64(config.timeout_s.0),
            idle: Duration::from_secs_f64(config.idle_timeout_s.0),
        };
        let headers = endpoint.headers.clone();
        let settings = HttpSettings {
            http2: carrier.http2,
            roots: endpoint.roots.clone(),
        };
        let Carrier {
            library, sockets, ..
        } = carrier;
        Ok(Client {
            transport: Transport::new(library, sockets, &url, headers, timeouts, &settings)?,
            versions: VersionsSeen::default(),
            url,
            stream,
            adapter,
            secrets: endpoint.secrets.clone(),
            max_event_bytes: config.max_event_bytes.get(),
            max_body_bytes: config.max_body_bytes.get(),
        })
    }

    /// The most connections the client held at once, where its HTTP library says.
    pub fn peak_connections(&self) -> Option<u64> {
        self.transport.peak_connections()
    }

    /// The HTTP versions responses came in (`HTTP/1.1`, `HTTP/2`, both joined by ` + `),
    /// empty before the first response.
    pub fn http_versions(&self) -> String {
        self.versions.describe()
    }

    /// Sends `item` and reads the whole response, calling `on_gap` with every gap between
    /// consecutive content chunks (the inter-token latency samples).
    pub async fn send(&self, item: &WorkItem, mut on_gap: impl FnMut(Duration)) -> Exchange {
        let body = self.adapter.request_body(item, self.stream);
        let mut exchange = Exchange::new(Instant::now());
        let outcome = match self.transport.post(&self.url, body).await {
            Ok(response) => {
                self.versions.note(response.version);
                exchange.connect = response.opened;
                self.read(response, &mut exchange, &mut on_gap).await
            }
            Err(failure) => Err(failure),
        };
        exchange.end = Instant::now();
        exchange.error = outcome
            .err()
            .map(|(class, message)| (class, self.kept_message(&message)));
        exchange
    }

    /// An error message as the record keeps it: on one line, at most
    /// [`MAX_MESSAGE_CHARS`] long, without the secrets the client sent (cut first, so a
    /// key cut in half at the end is still caught).
    fn kept_message(&self, message: &str) -> String {
        keep_message(&self.secrets, message)
    }

    async fn read(
        &self,
        mut response: Response,
        exchange: &mut Exchange,
        on_gap: &mut impl FnMut(Duration),
    ) -> Result<(), Failure> {
        let status = response.status;
        exchange.status = Some(status);
        if !(200..300).contains(&status) {
            exchange.retry_after = retry_hint(&response);
            exchange.should_retry = response
                .header("x-should-retry")
                .and_then(|v| v.parse::<bool>().ok());
            let excerpt = read_excerpt(&mut response).await;
            return Err((
                ErrorClass::from_status(status),
                format!("HTTP {status}: {excerpt}"),
            ));
        }
        if self.stream {
            self.read_stream(response, exchange, on_gap).await
        } else {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > self.max_body_bytes {
                    return Err((
                        ErrorClass::Protocol,
                        format!(
                            "the response body exceeded {} bytes (raise [client] max_body_bytes if the server really sends such bodies)",
                            self.max_body_bytes
                        ),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            let usage = self
                .adapter
                .whole_body(&body)
                .map_err(|m| (ErrorClass::Protocol, m))?;
            exchange.output_tokens = usage.output_tokens;
            exchange.cached_tokens = usage.cached_tokens;
            Ok(())
        }
    }

    async fn read_stream(
        &self,
        mut response: Response,
        exchange: &mut Exchange,
        on_gap: &mut impl FnMut(Duration),
    ) -> Result<(), Failure> {
        let mut parser = SseParser::with_limit(self.max_event_bytes);
        let mut tally = StreamTally::default();
        while let Some(bytes) = response.chunk().await? {
            let arrived = Instant::now();
            parser
                .feed(&bytes, |event| {
                    tally.add(self.adapter.stream_event(event), arrived)
                })
                .map_err(|e| (ErrorClass::Protocol, e.to_string()))?;
            if let Some(error) = tally.error.take() {
                return Err((ErrorClass::Protocol, error));
            }
            for gap in tally.gaps.drain(..) {
                on_gap(gap);
            }
            exchange.first_token = tally.first;
            exchange.content_chunks = tally.chunks;
        }
        if !tally.done {
            let why = if parser.has_pending() {
                "stream ended inside an event"
            } else {
                "stream ended without its end marker"
            };
            return Err((ErrorClass::Protocol, why.into()));
        }
        exchange.output_tokens = tally.usage.unwrap_or(tally.chunks);
        exchange.tokens_counted = tally.usage.is_none();
        exchange.cached_tokens = tally.cached.unwrap_or(0);
        Ok(())
    }
}

/// Running state of one stream. `gaps` holds only the gaps of one network read (a few
/// entries, reused), so memory does not grow with the stream.
#[derive(Default)]
struct StreamTally {
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: Vec<Duration>,
    chunks: u32,
    usage: Option<u32>,
    cached: Option<u32>,
    done: bool,
    error: Option<String>,
}

impl StreamTally {
    fn add(&mut self, summary: Result<EventSummary, String>, arrived: Instant) {
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        for _ in 0..summary.content_chunks {
            match self.last {
                Some(last) => self.gaps.push(arrived - last),
                None => self.first = Some(arrived),
            }
            self.last = Some(arrived);
            self.chunks += 1;
        }
        self.usage = summary.output_tokens.or(self.usage);
        self.cached = summary.cached_tokens.or(self.cached);
        self.done |= summary.done;
    }
}

/// A `target.headers` value: the text as written, or read from its environment variable
/// and marked sensitive, like the API key.
fn header_value(name: &HeaderName, source: &HeaderSource) -> Result<HeaderValue, String> {
    match source {
        HeaderSource::Text(text) => HeaderValue::try_from(text.as_str())
            .map_err(|_| format!("target.headers.{name}: the value is not valid header text")),
        HeaderSource::Env { env } => {
            let named_by = format!("target.headers.{name}");
            sensitive_value(read_env(env, &named_by, "the header's value")?, env)
        }
    }
}

/// Reads a secret from the environment; the error names the variable, never a value.
fn read_env(env: &EnvName, named_by: &str, what: &str) -> Result<String, String> {
    match std::env::var(&env.0) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(format!(
            "the environment variable {} (named by {named_by}) is set but empty: export it with {what}",
            env.0
        )),
        Err(_) => Err(format!(
            "the environment variable {} (named by {named_by}) is not set: export it with {what}",
            env.0
        )),
    }
}

/// A header value hidden from debug output (hyper and reqwest print sensitive values as
/// `Sensitive`).
fn sensitive_value(text: String, env: &EnvName) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::try_from(text)
        .map_err(|_| format!("the value in {} is not valid header text", env.0))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `retry-after-ms` (float milliseconds) first, then `retry-after` (float seconds), as
/// the SDKs read them. (The HTTP-date form of `retry-after` is not read.) A hint too
/// long for a `Duration` saturates: the retry policy's cap decides what it means.
fn retry_hint(response: &Response) -> Option<Duration> {
    let parse = |name, scale: f64| {
        let value: f64 = response.header(name)?.parse().ok()?;
        (value >= 0.0).then(|| Duration::try_from_secs_f64(value * scale).unwrap_or(Duration::MAX))
    };
    parse("retry-after-ms", 1e-3).or_else(|| parse("retry-after", 1.0))
}

/// TLS for https targets: rustls with the ring provider, installed once per process.
/// Called before building any `reqwest::Client` (reqwest panics without a provider).
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `message` as a record keeps it: on one line, at most [`MAX_MESSAGE_CHARS`] long,
/// without `secrets` (cut first, so a secret cut in half at the end is still caught).
pub fn keep_message(secrets: &Redactor, message: &str) -> String {
    let (line, cut) = one_line(message);
    let mut kept = secrets.redact(&line);
    if cut {
        kept.push('…');
    }
    kept
}

/// The longest error message kept with a record, in characters: every record keeps
/// its message, so a server's error event of a megabyte must not be kept whole.
const MAX_MESSAGE_CHARS: usize = 400;

/// `message` on one line (line breaks and tabs of a pretty-printed error body become
/// spaces) and at most [`MAX_MESSAGE_CHARS`] long, and whether it was cut.
fn one_line(message: &str) -> (String, bool) {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 3));
    for (n, word) in message.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if let Some((end, _)) = out.char_indices().nth(MAX_MESSAGE_CHARS) {
            out.truncate(end);
            return (out, true);
        }
    }
    (out, false)
}

/// Parses a named SSE event's data, or says which event could not be read.
fn read_named_event<'a, T: serde::Deserialize<'a>>(event: SseEvent<'a>) -> Result<T, String> {
    serde_json::from_str(event.data).map_err(|e| {
        format!(
            "unreadable {} event ({e}): {}",
            event.event,
            excerpt(event.data)
        )
    })
}

/// What the client reads of a whole response body: its usage only (`U`, the API's
/// shape of it), every other field passed over unread. Besides being all that is
/// measured, it is the cheapest parse: nothing else is built, and the body is read once
/// for every request.
#[derive(serde::Deserialize)]
struct UsageOf<U> {
    usage: Option<U>,
}

/// Parses a whole body, a `what` (`message`, `completion`…), or says it could not.
fn read_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, String> {
    // Checked as UTF-8 once, whole, rather than string by string as `from_slice` does
    // (a tenth of the parse's instructions); a body that is not is parsed for the same
    // error.
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    };
    parsed.map_err(|e| format!("unreadable {what} ({e}): {}", body_excerpt(body)))
}

/// A request's JSON body, in a buffer sized for it from the start (`to_vec` starts
/// at 128 bytes and doubles, copying each time): `text` is the bytes of prompt and
/// model name it carries.
fn json_body(request: &impl serde::Serialize, text: usize) -> Vec<u8> {
    let mut body = JsonBody::with_room(text);
    serde_json::to_writer(&mut body.0, request).expect("a request always serializes");
    body.into_bytes()
}

/// A request's JSON body written piece by piece, for the OpenAI chat adapter (the
/// default API, on every request's path): the same bytes `serde_json` writes for the
/// wire type (the adapter's tests compare them), without its per-byte escape scan of
/// every key and value (`callgrind`: 2,600 instructions of the chat request's 3,100
/// went to serialising it).
struct JsonBody(Vec<u8>);

impl JsonBody {
    /// A body with room for `text` bytes of strings, and the rest of a request (its
    /// field names and numbers) in 256 more.
    fn with_room(text: usize) -> JsonBody {
        JsonBody(Vec::with_capacity(text + 256))
    }

    /// JSON text written as it is: keys, punctuation, literals.
    fn raw(&mut self, json: &str) -> &mut Self {
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    /// A string value, escaped as `serde_json` escapes it.
    fn string(&mut self, text: &str) -> &mut Self {
        crate::wire::write_json_str(&mut self.0, text);
        self
    }

    fn number(&mut self, value: u32) -> &mut Self {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// That a body parsed but carried no usage, with the start of the body: a proxy's
/// error in a 200, say, shows what it was.
fn without_usage(what: &str, body: &[u8]) -> String {
    format!("{what} without usage: {}", body_excerpt(body))
}

/// The characters of a long text an error message shows.
const EXCERPT_CHARS: usize = 120;

/// The start of a response body, as text, for error messages: only the bytes its first
/// [`EXCERPT_CHARS`] characters can take (4 each at most) are converted, not a body of
/// megabytes.
fn body_excerpt(body: &[u8]) -> String {
    let start = &body[..body.len().min(4 * EXCERPT_CHARS)];
    excerpt(&String::from_utf8_lossy(start)).to_string()
}

/// The start of a long text, for error messages.
fn excerpt(s: &str) -> &str {
    let end = s
        .char_indices()
        .nth(EXCERPT_CHARS)
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// The first [`ERROR_EXCERPT`] bytes of an error body, as text.
async fn read_excerpt(response: &mut Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_EXCERPT);
    String::from_utf8_lossy(&bytes).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_messages_are_one_bounded_line() {
        assert_eq!(
            one_line("HTTP 400: {\n  \"error\": 1\n}\t"),
            ("HTTP 400: { \"error\": 1 }".into(), false)
        );
        let (long, cut) = one_line(&"word ".repeat(500));
        assert!(
            cut && long.chars().count() == MAX_MESSAGE_CHARS,
            "{}",
            long.len()
        );
    }
}
