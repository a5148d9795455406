//! `target.headers`: extra request headers for a live endpoint.
//!
//! Checked while the scenario is read, so `llmbench validate` catches a bad name with
//! its line. A value is either text or `{ env = "NAME" }`, read from the environment when
//! the run starts: the scenario file is copied into every results folder, so a credential
//! (Azure's `api-key`, a gateway's token) must never be written in it. Headers that carry
//! credentials are refused as text for that reason.

use super::EnvName;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Header names whose values are credentials by definition.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RequestHeaders(pub BTreeMap<String, HeaderSource>);

/// Where a header's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HeaderSource {
    Text(String),
    Env { env: EnvName },
}

impl<'de> Deserialize<'de> for RequestHeaders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let headers = BTreeMap::<String, HeaderSource>::deserialize(d)?;
        for (name, source) in &headers {
            check(name, source).map_err(de::Error::custom)?;
        }
        Ok(RequestHeaders(headers))
    }
}

fn check(name: &str, source: &HeaderSource) -> Result<(), String> {
    if http::HeaderName::try_from(name).is_err() {
        return Err(format!(
            "\"{name}\" is not a valid header name (letters, digits and '-', such as OpenAI-Organization)"
        ));
    }
    let HeaderSource::Text(text) = source else {
        return Ok(());
    };
    if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "\"{name}\" carries a credential, and the scenario is copied into the results: \
             write {name} = {{ env = \"VARIABLE\" }} and export the value in VARIABLE \
             (or use target.api_key_env for the provider's own key header)"
        ));
    }
    // The value itself is not echoed: it may be a secret written in the wrong place.
    if http::HeaderValue::try_from(text.as_str()).is_err() {
        return Err(format!(
            "the value of \"{name}\" is not valid header text (visible ASCII, no line breaks)"
        ));
    }
    Ok(())
}

/// Hand-written rather than `#[serde(untagged)]`, whose only error is "did not match
/// any variant".
impl<'de> Deserialize<'de> for HeaderSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = HeaderSource;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a header value as text, or { env = \"VARIABLE\" }")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<HeaderSource, E> {
        Ok(HeaderSource::Text(text.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderSource, A::Error> {
        let mut env = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "env" if env.is_none() => env = Some(map.next_value::<EnvName>()?),
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{key}`: a header value is text or {{ env = \"VARIABLE\" }}"
                    )));
                }
            }
        }
        env.map(|env| HeaderSource::Env { env })
            .ok_or_else(|| de::Error::missing_field("env"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<RequestHeaders, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            headers: RequestHeaders,
        }
        toml::from_str::<Wrapper>(src)
            .map(|w| w.headers)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn text_and_environment_values_are_read() {
        let headers = parse(
            r#"headers = { "OpenAI-Organization" = "org-1", api-key = { env = "AZURE_KEY" } }"#,
        )
        .unwrap();
        assert_eq!(
            headers.0["OpenAI-Organization"],
            HeaderSource::Text("org-1".into())
        );
        assert_eq!(
            headers.0["api-key"],
            HeaderSource::Env {
                env: EnvName("AZURE_KEY".into())
            }
        );
    }

    #[test]
    fn bad_names_values_and_written_credentials_are_refused() {
        let error = parse(r#"headers = { "bad header" = "v" }"#).unwrap_err();
        assert!(
            error.contains("\"bad header\" is not a valid header name"),
            "{error}"
        );
        let error = parse(r#"headers = { Authorization = "Bearer sk-secret" }"#).unwrap_err();
        assert!(
            error.contains("\"Authorization\" carries a credential"),
            "{error}"
        );
        assert!(!error.contains("sk-secret"), "{error}");
        let error = parse("headers = { x-trace = \"a\\nb\" }").unwrap_err();
        assert!(error.contains("not valid header text"), "{error}");
        let error = parse(r#"headers = { x-trace = { file = "k" } }"#).unwrap_err();
        assert!(error.contains("unknown key `file`"), "{error}");
        let error = parse(r#"headers = { x-trace = 3 }"#).unwrap_err();
        assert!(error.contains("or { env = \"VARIABLE\" }"), "{error}");
    }
}
