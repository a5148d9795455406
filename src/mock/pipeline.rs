//! The one request pipeline of every API the mock serves: arrive (body read within its
//! bounds, stall window, request numbered), parse, rate limits, fault, pacing, then a
//! streamed or whole completion. What differs between APIs is a [`ServedApi`],
//! implemented once per API in its own file; a new API is that file and one route to
//! [`serve`].
//!
//! Owns the order of the steps and what they share (counters, the output settlement).
//! Must not touch any API's wire format (bodies, frames, header names): the
//! [`ServedApi`] implementations own those.

use super::body::{self, BodyError};
use super::cache::{CacheUsage, PromptTokens};
use super::faults::Fault;
use super::generator::CompletionPlan;
use super::limits::{Admission, Charge, Dimension, RateLimited, Reading, api_key};
use super::metrics::Running;
use super::stream::{self, Completion, Framer};
use super::{MockState, insert};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What differs between the APIs the mock serves (OpenAI Chat Completions, legacy
/// Completions, Anthropic Messages): their wire format. Admission, rate limits, faults
/// and pacing are the pipeline's.
pub(super) trait ServedApi: Send + Sync + 'static {
    /// What the API shares with the provider's other endpoints.
    const PROVIDER: ProviderConventions;
    type SseFramer: Framer;

    /// The id of the completion, chunk or message answering request `serial`.
    fn response_id(serial: u64) -> String;
    /// Reads the request body into what the pipeline needs; `Err` is the 400's message.
    fn parse(body: &[u8]) -> Result<ParsedRequest, String>;
    /// The framer of a stream of `choices` choices.
    fn framer(meta: ResponseMeta, choices: u32, include_usage: bool) -> Self::SseFramer;
    /// The whole (non-streamed) response body, with each choice's text in `texts`.
    fn whole(meta: &ResponseMeta, texts: Vec<String>, plan: &CompletionPlan) -> Response;
}

/// What a provider's endpoints answer alike: request ids, rate limits, errors.
pub(super) struct ProviderConventions {
    /// The response header carrying the request id, `req_` and `request_id_digits` hex
    /// digits of the request's serial number.
    pub request_id_header: &'static str,
    pub request_id_digits: usize,
    /// The rate-limit dimensions the provider meters. Output tokens, if metered, are
    /// settled when the response ends.
    pub metered: &'static [Dimension],
    /// Writes the readings of the metered buckets, as every response carries them.
    pub rate_limit_headers: fn(&[Reading], &mut HeaderMap),
    /// The body of a refusal (answered with the status given) in the provider's error
    /// envelope, which may name the request id given.
    pub error_body: fn(&Refusal, StatusCode, &str) -> Response,
    /// The 400's message for a request capping its output at zero tokens.
    pub zero_output_cap: &'static str,
    /// The header a whole response gives its processing time in (milliseconds), if any.
    pub processing_ms_header: Option<&'static str>,
    /// Whether prompt tokens read from cache count against the input-token limits
    /// (OpenAI's TPM counts them; Anthropic's ITPM does not).
    pub cache_reads_metered: bool,
}

/// A request as the pipeline sees it.
pub(super) struct ParsedRequest {
    pub model: String,
    /// The prompt's token count and cacheable prefixes.
    pub prompt_tokens: PromptTokens,
    /// The text the completion's plan is drawn from.
    pub prompt: String,
    pub output_cap: Option<u32>,
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// Choices asked for (OpenAI's `n`), each drawn on its own.
    pub choices: u32,
}

/// What every chunk or body of one response repeats.
pub(super) struct ResponseMeta {
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u32,
    /// What of the prompt was read from (and written to) the cache; `None` without
    /// `[mock.cache]`, so usage reads as it did before caching was modelled.
    pub cached: Option<CacheUsage>,
}

/// Why a request is refused; each API renders it in its own envelope.
pub(super) enum Refusal {
    /// A body that could not be read (413 when over the size limit, 408 when too slow)
    /// or is no valid request (400).
    Invalid {
        status: StatusCode,
        message: String,
    },
    /// An injected HTTP error, or the status of a full capacity queue.
    Injected(u16),
    QuotaExhausted,
    RateLimited {
        limited: RateLimited,
        readings: Vec<Reading>,
        model: String,
    },
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Invalid { status, .. } => *status,
            Refusal::Injected(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Refusal::QuotaExhausted | Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// A request admitted, with everything its response needs.
struct AdmittedRequest {
    completion: Completion,
    meta: ResponseMeta,
    stream: bool,
    include_usage: bool,
}

/// One request to API `A`: arrive, then admit it and stream or return its completion,
/// or refuse it in `A`'s envelope.
pub(super) async fn serve<A: ServedApi>(
    State(state): State<Arc<MockState>>,
    request_headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let arrival = arrive(&state, body).await;
    let provider = &A::PROVIDER;
    let request_id = format!("req_{:01$x}", arrival.serial, provider.request_id_digits);
    let mut headers = HeaderMap::new();
    insert(&mut headers, provider.request_id_header, request_id.clone());
    if arrival.body.is_err() {
        // What is left of a body refused unread (too large, too slow) is not waited
        // for: the connection closes after the answer, as nginx closes it after its 413
        // and 408.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    match admit::<A>(&state, &request_headers, arrival, &mut headers) {
        Ok(admitted) if admitted.stream => {
            let running = Running::start(&state, admitted.completion.received);
            let choices = admitted.completion.plan.choices.len() as u32;
            let framer = A::framer(admitted.meta, choices, admitted.include_usage);
            stream_response(state, headers, admitted.completion, framer, running)
        }
        Ok(admitted) => {
            let running = Running::start(&state, admitted.completion.received);
            let response = whole_response::<A>(&state, headers, admitted).await;
            running.ended();
            response
        }
        Err(refusal) => refuse::<A>(refusal, headers, &request_id),
    }
}

/// Parses, charges to the rate limits (their headers written to `headers`), draws the
/// plan and fault, and takes a place in the capacity queue.
fn admit<A: ServedApi>(
    state: &Arc<MockState>,
    request_headers: &HeaderMap,
    arrival: Arrival,
    headers: &mut HeaderMap,
) -> Result<AdmittedRequest, Refusal> {
    let request = parse::<A>(state, arrival.body)?;
    let prompt_tokens = request.prompt_tokens.tokens();
    let cached = state.cache_lookup(&request);
    let read = cached.map_or(0, |c| c.read);
    let charge = Charge {
        input: match A::PROVIDER.cache_reads_metered {
            true => prompt_tokens,
            false => prompt_tokens - read,
        },
        max_output: request.output_cap.unwrap_or(0),
    };
    let key = api_key(request_headers);
    rate_limit::<A>(state, &key, charge, &request.model, headers)?;
    state.admitted(&request.prompt_tokens);
    // Only a provider that meters output tokens settles them when the response ends.
    let settlement = A::PROVIDER
        .metered
        .contains(&Dimension::OutputTokens)
        .then(|| OutputSettlement::new(state.clone(), key, charge.max_output));
    let completion = completion(
        state,
        request_headers,
        &request,
        (arrival.received, read),
        settlement,
    )?;
    let meta = ResponseMeta {
        id: A::response_id(arrival.serial),
        created: unix_now(),
        model: request.model,
        prompt_tokens,
        cached,
    };
    Ok(AdmittedRequest {
        completion,
        meta,
        stream: request.stream,
        include_usage: request.include_usage,
    })
}

/// The plan, fault and pacing of an admitted request received at `received` with
/// `read` of its prompt tokens read from cache (which shortens its prefill and time to
/// first token); `settlement` settles its output.
fn completion(
    state: &MockState,
    request_headers: &HeaderMap,
    request: &ParsedRequest,
    (received, read): (tokio::time::Instant, u32),
    settlement: Option<OutputSettlement>,
) -> Result<Completion, Refusal> {
    let mut plan = CompletionPlan::draw(
        &state.config,
        state.seed,
        &request.prompt,
        request.output_cap,
        request.choices,
    );
    let prompt_tokens = request.prompt_tokens.tokens();
    if let Some(cache) = &state.cache {
        plan.ttft = cache.ttft(plan.ttft, read, prompt_tokens);
    }
    let fault = match state.fault_for(request_headers, &plan, request.stream) {
        Ok(Some(Fault::Status(status))) => return Err(Refusal::Injected(status)),
        Ok(fault) => fault,
        Err(message) => return Err(invalid(state, message)),
    };
    let pacing = state
        .pacing(prompt_tokens - read)
        .map_err(Refusal::Injected)?;
    Ok(Completion {
        plan,
        received,
        pacing,
        fault,
        settlement,
    })
}

fn parse<A: ServedApi>(
    state: &MockState,
    body: Result<Bytes, Refusal>,
) -> Result<ParsedRequest, Refusal> {
    let request = A::parse(&body?).map_err(|message| invalid(state, message))?;
    if request.output_cap == Some(0) {
        return Err(invalid(state, A::PROVIDER.zero_output_cap.into()));
    }
    Ok(request)
}

/// A 400, counted.
fn invalid(state: &MockState, message: String) -> Refusal {
    state.counters.invalid.fetch_add(1, Ordering::Relaxed);
    Refusal::Invalid {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

/// Charges the request to its key's buckets of the dimensions `A` meters. Every
/// response carries their readings; a refusal adds when to retry.
fn rate_limit<A: ServedApi>(
    state: &MockState,
    key: &str,
    charge: Charge,
    model: &str,
    headers: &mut HeaderMap,
) -> Result<(), Refusal> {
    let provider = &A::PROVIDER;
    let Some((admission, readings)) = state.admit(key, provider.metered, charge) else {
        return Ok(());
    };
    (provider.rate_limit_headers)(&readings, headers);
    match admission {
        Admission::Admitted => Ok(()),
        Admission::QuotaExhausted => {
            insert(headers, "x-should-retry", "false".into());
            Err(Refusal::QuotaExhausted)
        }
        Admission::Limited(limited) => {
            state.retry_headers(headers, limited.wait);
            let model = model.to_string();
            Err(Refusal::RateLimited {
                limited,
                readings,
                model,
            })
        }
    }
}

fn refuse<A: ServedApi>(refusal: Refusal, mut headers: HeaderMap, request_id: &str) -> Response {
    if let Refusal::Injected(429) = refusal {
        // An injected 429 says when to retry, as a provider's does.
        insert(&mut headers, "retry-after", "1".into());
    }
    let status = refusal.status();
    let body = (A::PROVIDER.error_body)(&refusal, status, request_id);
    (status, headers, body).into_response()
}

fn stream_response(
    state: Arc<MockState>,
    mut headers: HeaderMap,
    completion: Completion,
    framer: impl Framer,
    running: Running,
) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let paced = stream::Paced::new(state, completion, Box::new(framer), running);
    let (body, slot) = stream::body(paced);
    let mut response = (StatusCode::OK, headers, body).into_response();
    response.extensions_mut().insert(slot);
    response
}

async fn whole_response<A: ServedApi>(
    state: &MockState,
    mut headers: HeaderMap,
    admitted: AdmittedRequest,
) -> Response {
    let AdmittedRequest {
        mut completion,
        meta,
        ..
    } = admitted;
    if let Some(faulty) = stream::whole_fault(state, completion.fault).await {
        return faulty;
    }
    let texts = stream::whole(state, &mut completion).await;
    if let Some(name) = A::PROVIDER.processing_ms_header {
        let elapsed_ms = completion.received.elapsed().as_millis().to_string();
        insert(&mut headers, name, elapsed_ms);
    }
    let body = A::whole(&meta, texts, &completion.plan);
    (StatusCode::OK, headers, body).into_response()
}

/// The text of the one choice of an API without `n`.
pub(super) fn only_text(texts: Vec<String>) -> String {
    texts.into_iter().next().unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// A request as it arrives: its body read (or why it was refused), the stall window
/// waited out, the request counted and numbered, and its arrival time.
struct Arrival {
    received: tokio::time::Instant,
    serial: u64,
    body: Result<Bytes, Refusal>,
}

async fn arrive(state: &MockState, body: axum::body::Body) -> Arrival {
    let body = read_body(state, body).await;
    if let Some(end) = state.stalled_until() {
        tokio::time::sleep_until(end.into()).await;
    }
    let received = tokio::time::Instant::now();
    let serial = state.next_request();
    if body.is_err() {
        state.counters.invalid.fetch_add(1, Ordering::Relaxed);
    }
    Arrival {
        received,
        serial,
        body,
    }
}

/// The request body, read within `max_body_bytes` and `body_timeout_s`. A slow body gets
/// 408 (Request Timeout), as nginx answers a client whose body stops arriving (and the
/// SDKs retry a 408).
async fn read_body(state: &MockState, body: axum::body::Body) -> Result<Bytes, Refusal> {
    let config = &state.config;
    let timeout = Duration::from_secs_f64(config.body_timeout_s.0);
    let (status, message) = match body::read(body, config.max_body_bytes.get(), timeout).await {
        Ok(bytes) => return Ok(bytes),
        Err(BodyError::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large: the body exceeds the server's size limit".to_string(),
        ),
        Err(BodyError::TimedOut(after)) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "Request timeout: the request body did not arrive within {} s",
                after.as_secs_f64()
            ),
        ),
        Err(BodyError::Unreadable(why)) => (
            StatusCode::BAD_REQUEST,
            format!("Could not read the request body: {why}"),
        ),
    };
    Err(Refusal::Invalid { status, message })
}

/// Settles a response's output tokens with the rate limits when it ends, however it
/// ends (finished, failed, or dropped by the client).
pub(super) struct OutputSettlement {
    state: Arc<MockState>,
    key: String,
    reserved: u32,
    pub generated: u32,
}

impl OutputSettlement {
    fn new(state: Arc<MockState>, key: String, reserved: u32) -> OutputSettlement {
        OutputSettlement {
            state,
            key,
            reserved,
            generated: 0,
        }
    }
}

impl Drop for OutputSettlement {
    fn drop(&mut self) {
        self.state
            .limits
            .settle_output(&self.key, self.reserved, self.generated);
    }
}
