//! The reqwest transport: reqwest's pooled client on the strategy's tokio runtime, with
//! HTTP/2 as hyper's transport has it (prior knowledge on `http://`, by ALPN on
//! `https://`) and the same extra roots.

use super::{Body, Failure, HttpSettings, Response, Timeouts, before_response, error_chain};
use crate::client::ErrorClass;
use bytes::Bytes;
use reqwest::header::HeaderMap;

pub fn build(
    headers: HeaderMap,
    timeouts: Timeouts,
    settings: &HttpSettings,
) -> anyhow::Result<reqwest::Client> {
    crate::client::install_tls_provider();
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .read_timeout(timeouts.idle);
    if settings.http2 {
        builder = builder.http2_prior_knowledge();
    }
    if !settings.roots.is_empty() {
        let roots = settings
            .roots
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.tls_certs_merge(roots);
    }
    Ok(builder.build()?)
}

pub async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<Response, Failure> {
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    match request.send().await {
        Ok(mut response) => Ok(Response {
            opened: None,
            status: response.status().as_u16(),
            version: response.version(),
            // Taken, not cloned: the body is read through `response` alone.
            headers: std::mem::take(response.headers_mut()),
            body: Body::Reqwest(response),
        }),
        // No response at all: the connection failed (or timed out) before one came.
        Err(e) if e.is_timeout() => Err(classify(&e)),
        Err(e) => Err(before_response(&e)),
    }
}

pub async fn chunk(response: &mut reqwest::Response) -> Result<Option<Bytes>, Failure> {
    response.chunk().await.map_err(|e| classify(&e))
}

fn classify(e: &reqwest::Error) -> Failure {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Protocol
    };
    (class, error_chain(e))
}
