//! Small checked values used across the scenario's sections: each refuses a bad value
//! while the file is read, so the error carries its line, column and key.
//!
//! A leaf: imports nothing from the crate.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A finite number greater than 0 (rates, durations, scale factors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Positive(pub f64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match f64::deserialize(d)? {
            v if v.is_finite() && v > 0.0 => Ok(Positive(v)),
            v => Err(de::Error::custom(format!(
                "must be a number greater than 0, got {v}"
            ))),
        }
    }
}

/// A whole number of at least 1 (request counts, limits, threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i64::deserialize(d)? {
            v if v >= 1 => Ok(Count(v as u64)),
            v => Err(de::Error::custom(format!("must be at least 1, got {v}"))),
        }
    }
}

impl Count {
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A share from 0 to 1: an error rate, a fault's probability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Share(pub f64);

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match f64::deserialize(d)? {
            v if (0.0..=1.0).contains(&v) => Ok(Share(v)),
            v => Err(de::Error::custom(format!(
                "must be a share from 0 to 1 (0.01 = 1 %), got {v}"
            ))),
        }
    }
}

/// A name used in file names: letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::check(&s).map_err(de::Error::custom)?;
        Ok(Name(s))
    }
}

impl Name {
    /// Why `s` cannot name a file, if it cannot.
    pub(super) fn check(s: &str) -> Result<(), String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) || s.starts_with('.') {
            return Err(format!(
                "\"{s}\" is not a usable name: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of an environment variable. API keys come only from the environment: a
/// scenario names the variable, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnvName(pub String);

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(de::Error::custom(
                "must name an environment variable (letters, digits and _, such as OPENAI_API_KEY), not hold a key",
            ));
        }
        Ok(EnvName(s))
    }
}

/// A server root such as `https://api.openai.com` or `http://localhost:8000`; a trailing
/// `/v1` (as the SDKs write base URLs) is accepted and dropped, since the API paths
/// carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(pub String);

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let shown = hide_password(&s);
        let url = url::Url::parse(&s)
            .map_err(|e| de::Error::custom(format!("\"{shown}\" is not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(de::Error::custom(format!(
                "\"{shown}\" holds credentials (user:password@), which would be copied into the results: name the key's environment variable in `api_key_env`, or send a header from the environment (`headers = {{ authorization = {{ env = \"VAR\" }} }}`)"
            )));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(de::Error::custom(format!(
                "\"{shown}\" must be an http:// or https:// URL with a host, e.g. http://localhost:8000"
            )));
        }
        let trimmed = s.trim_end_matches('/');
        Ok(BaseUrl(
            trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string(),
        ))
    }
}

impl BaseUrl {
    /// True for localhost, 127.0.0.0/8 and ::1: traffic that stays on this machine.
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.0) else {
            return false;
        };
        match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

/// `text` with the password of any `scheme://user:password@host` in it replaced by
/// `[redacted]`, for messages that quote what the user wrote.
pub fn hide_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(['/', '?', '#', '"', '\'', ' '])
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at_sign), Some(colon)) if colon < at_sign => {
                out.push_str(&authority[..=colon]);
                out.push_str("[redacted]");
                out.push_str(&authority[at_sign..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            hide_password("base_url = \"http://user:s3cret@host:80/v1\" # x://a:b@c"),
            "base_url = \"http://user:[redacted]@host:80/v1\" # x://a:[redacted]@c"
        );
        assert_eq!(hide_password("http://host:8000/v1"), "http://host:8000/v1");
        assert_eq!(hide_password("no url"), "no url");
    }
}
