//! `[target]`: where requests go (the embedded mock, or a live endpoint speaking one of
//! the wire formats), with its key, extra headers, prices and the extra certificate
//! authorities a private https endpoint needs (`ca_file`, read and checked here).

use super::headers::RequestHeaders;
use super::values::{BaseUrl, EnvName, NonNegative};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where requests go: the embedded mock, or a live endpoint speaking one of the wire
/// formats.
#[derive(Debug, Clone, Serialize, Deserialize)]
/// Written `kind = "…"` in `[target]`, read through [`super::tagged`].
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Target {
    /// The embedded mock server, started on 127.0.0.1 for the run.
    Mock {
        #[serde(default = "default_mock_model")]
        model: String,
        /// Which of the mock's OpenAI endpoints to call.
        #[serde(default)]
        api: OpenAiApi,
    },
    /// An OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, Ollama, LiteLLM):
    /// `POST <base_url>/v1/chat/completions`.
    Openai {
        base_url: BaseUrl,
        model: String,
        #[serde(default)]
        api: OpenAiApi,
        /// Environment variable holding the API key (absent: no key is sent).
        api_key_env: Option<EnvName>,
        /// Extra request headers (see `headers`).
        #[serde(default)]
        headers: RequestHeaders,
        /// Prices, for the cost estimate of the plan.
        price: Option<Price>,
        /// For servers that accept them (vLLM and its kin): send `ignore_eos` and
        /// `min_tokens = max_tokens`, so every completion is exactly `max_tokens` long.
        #[serde(default)]
        ignore_eos: bool,
        /// PEM certificates of extra authorities to trust (see [`CaFile`]).
        ca_file: Option<CaFile>,
    },
    /// The Anthropic Messages API: `POST <base_url>/v1/messages`.
    Anthropic {
        #[serde(default = "anthropic_url")]
        base_url: BaseUrl,
        model: String,
        #[serde(default = "anthropic_version", deserialize_with = "header_text")]
        anthropic_version: String,
        api_key_env: Option<EnvName>,
        #[serde(default)]
        headers: RequestHeaders,
        price: Option<Price>,
        ca_file: Option<CaFile>,
    },
}

/// `ca_file`: a PEM file of certificate authorities trusted on top of the operating
/// system's roots, for https endpoints behind a private CA (a company gateway, a
/// self-signed test server). A relative path is taken from the scenario's folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaFile(pub PathBuf);

impl CaFile {
    /// The file's path, relative ones taken from `folder`.
    pub fn resolve(&self, folder: &Path) -> PathBuf {
        folder.join(&self.0)
    }

    /// Reads the certificates of the file (relative to `folder`): at least one, each a
    /// `-----BEGIN CERTIFICATE-----` block.
    pub fn read(&self, folder: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
        let path = self.resolve(folder);
        let shown = path.display();
        let pem = std::fs::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{shown} is not a PEM file of certificates: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "{shown} holds no certificate: expected PEM blocks starting with -----BEGIN CERTIFICATE-----"
            ));
        }
        Ok(certs)
    }
}

/// Which OpenAI endpoint an OpenAI-compatible target is driven through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenAiApi {
    /// `POST /v1/chat/completions`.
    #[default]
    Chat,
    /// The legacy `POST /v1/completions`: a bare prompt, no chat template.
    Completions,
    /// `POST /v1/responses`, OpenAI's Responses API.
    Responses,
}

/// `[target.price]`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million: NonNegative,
    pub output_per_million: NonNegative,
}

/// The model the mock answers as, unless the scenario names another.
pub(super) fn default_mock_model() -> String {
    "llmbench-mock".into()
}

fn anthropic_url() -> BaseUrl {
    BaseUrl("https://api.anthropic.com".into())
}

fn anthropic_version() -> String {
    "2023-06-01".into()
}

/// Text sent as a header value: no line breaks or other control characters, which
/// would fail the request (or split it into two headers).
fn header_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match text.chars().any(|c| c.is_control() && c != '\t') {
        true => Err(serde::de::Error::custom(
            "must be plain text without line breaks or control characters (it is sent as a header)",
        )),
        false => Ok(text),
    }
}

impl Target {
    pub fn model(&self) -> &str {
        match self {
            Target::Mock { model, .. }
            | Target::Openai { model, .. }
            | Target::Anthropic { model, .. } => model,
        }
    }

    /// The environment variable holding a live target's API key, if it has one.
    pub fn api_key_env(&self) -> Option<&EnvName> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { api_key_env, .. } | Target::Anthropic { api_key_env, .. } => {
                api_key_env.as_ref()
            }
        }
    }

    pub fn price(&self) -> Option<Price> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { price, .. } | Target::Anthropic { price, .. } => *price,
        }
    }

    /// Whether to ask an OpenAI-compatible server for exactly `max_tokens` tokens.
    pub fn ignore_eos(&self) -> bool {
        matches!(
            self,
            Target::Openai {
                ignore_eos: true,
                ..
            }
        )
    }

    /// A live target's base URL; `None` for the embedded mock.
    pub fn base_url(&self) -> Option<&BaseUrl> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { base_url, .. } | Target::Anthropic { base_url, .. } => Some(base_url),
        }
    }

    /// Where requests go, for messages: the base URL, or "the embedded mock", and the
    /// legacy endpoint when that is the one driven.
    pub fn describe(&self) -> String {
        let place = self
            .base_url()
            .map_or_else(|| "the embedded mock".into(), |url| url.0.clone());
        match self {
            Target::Mock {
                api: OpenAiApi::Completions,
                ..
            }
            | Target::Openai {
                api: OpenAiApi::Completions,
                ..
            } => format!("{place} (legacy /v1/completions)"),
            Target::Mock {
                api: OpenAiApi::Responses,
                ..
            }
            | Target::Openai {
                api: OpenAiApi::Responses,
                ..
            } => format!("{place} (Responses API, /v1/responses)"),
            _ => place,
        }
    }

    /// The extra certificate authorities of a live target.
    pub fn ca_file(&self) -> Option<&CaFile> {
        match self {
            Target::Mock { .. } => None,
            Target::Openai { ca_file, .. } | Target::Anthropic { ca_file, .. } => ca_file.as_ref(),
        }
    }

    /// Why `ca_file` cannot be used, if it cannot: it must hold certificates, and the
    /// target must be an https one (a plain http:// endpoint has no certificate).
    pub(super) fn check_ca_file(&self, folder: &Path) -> Result<(), String> {
        let (Some(file), Some(url)) = (self.ca_file(), self.base_url()) else {
            return Ok(());
        };
        if !url.0.starts_with("https://") {
            return Err(format!(
                "applies to https:// targets only, and target.base_url is {}: remove ca_file or use https",
                url.0
            ));
        }
        file.read(folder).map(drop)
    }

    /// True when requests stay on this machine (the mock, or a loopback address).
    pub fn is_loopback(&self) -> bool {
        self.base_url().is_none_or(BaseUrl::is_loopback)
    }
}
