//! Small checked values used across the scenario's sections: each refuses a bad value
//! while the file is read, so the error carries its line, column and key.
//!
//! A leaf: imports nothing from the crate.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// The largest values any scenario may ask for, stated in the README. Each is far past
/// what a real run needs and well inside what the code below can hold without
/// overflow or an allocation that would take the machine down.
pub mod limits {
    /// Work items a strategy may be offered: a ten-million-request soak.
    pub const MAX_REQUESTS: u64 = 10_000_000;
    /// Requests in flight at once (a `limit`, the mock's decode slots).
    pub const MAX_IN_FLIGHT: u64 = 1_000_000;
    /// Threads of one runtime (a strategy's `workers`, the mock's `threads`).
    pub const MAX_THREADS: u64 = 1024;
    /// Any duration: about 115 days.
    pub const MAX_SECONDS: f64 = 1e7;
    /// Tokens in one prompt or completion: ten times the longest context windows.
    pub const MAX_TOKENS: f64 = 1e7;
    /// Arrivals per second.
    pub const MAX_RATE: f64 = 1e6;
    /// The slowest arrival rate: one request per [`MAX_SECONDS`].
    pub const MIN_RATE: f64 = 1.0 / MAX_SECONDS;
    /// Bytes one response may be allowed to hold (16 GiB).
    pub const MAX_BYTES: u64 = 1 << 34;
    /// Heap `warm_heap_mib` and `llmbench mock --warm-mib` may ask for (4 GiB).
    pub const MAX_WARM_MIB: u64 = 4096;
    /// CPU work after one response: one minute, in microseconds.
    pub const MAX_CPU_WORK_US: u64 = 60_000_000;
    /// Requests that may wait in a queue.
    pub const MAX_QUEUE: u64 = MAX_REQUESTS;
    /// Anything else counted (per-minute quotas, budgets, attempts).
    pub const MAX_COUNT: u64 = 1_000_000_000_000_000;
    /// Any other number (prices, objectives, factors).
    pub const MAX_NUMBER: f64 = 1e15;
}

use limits::*;

/// Defines a number read from the scenario and checked against its range there, once
/// for every key of that type, so nothing downstream can overflow on a value that passed.
macro_rules! checked_number {
    ($(#[$doc:meta])* $name:ident, $min:expr, $min_allowed:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = f64::deserialize(d)?;
                let low_ok = if $min_allowed { v >= $min } else { v > $min };
                match v.is_finite() && low_ok && v <= $max {
                    true => Ok($name(v)),
                    false => Err(de::Error::custom(range_message(
                        $what, $min, $min_allowed, $max, &shown(v),
                    ))),
                }
            }
        }
    };
}

/// Defines a whole number read from the scenario and checked against its range there.
macro_rules! checked_count {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub fn get(self) -> usize {
                usize::try_from(self.0).unwrap_or(usize::MAX)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = i64::deserialize(d)?;
                match u64::try_from(v) {
                    Ok(n) if ($min..=$max).contains(&n) => Ok($name(n)),
                    _ => Err(de::Error::custom(range_message(
                        $what, $min as f64, true, $max as f64, &v.to_string(),
                    ))),
                }
            }
        }
    };
}

/// "must be a number of seconds greater than 0 and at most 10,000,000, got 1e300".
fn range_message(what: &str, min: f64, min_allowed: bool, max: f64, got: &str) -> String {
    let low = match (min_allowed, min) {
        (true, m) => format!("from {}", plain(m)),
        (false, m) => format!("greater than {}", plain(m)),
    };
    let high = if min_allowed { "to" } else { "and at most" };
    format!("must be {what} {low} {high} {}, got {got}", plain(max))
}

/// A number from the user as they would write it back: `1e300`, not 301 digits.
pub fn shown(v: f64) -> String {
    let magnitude = v.abs();
    if v.is_finite() && (magnitude >= 1e15 || (magnitude > 0.0 && magnitude < 1e-6)) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A bound as people write it: `10,000,000`, `0.0000001`, `1e15` only when huge.
fn plain(v: f64) -> String {
    if v >= 1e13 {
        return format!("{v:e}");
    }
    if v.fract() != 0.0 {
        return format!("{v}");
    }
    let digits = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

checked_number!(
    /// A number greater than 0 (factors, prices, objectives).
    Positive, 0.0, false, MAX_NUMBER, "a number"
);
checked_number!(
    /// A number of 0 or more (overheads, factors, prices).
    NonNegative, 0.0, true, 1e10, "a number"
);
checked_number!(
    /// A duration in seconds.
    Seconds, 0.0, false, MAX_SECONDS, "a number of seconds"
);
checked_number!(
    /// A time from a start, in seconds (0 is the start).
    Offset, 0.0, true, MAX_SECONDS, "a number of seconds"
);
checked_number!(
    /// A duration in milliseconds.
    Millis, 0.0, false, MAX_SECONDS * 1000.0, "a number of milliseconds"
);
checked_number!(
    /// Arrivals per second.
    Rate, MIN_RATE, true, MAX_RATE, "a rate per second"
);
checked_number!(
    /// A factor time is multiplied by.
    Scale, 1e-6, true, 1e6, "a factor"
);
checked_number!(
    /// A share from 0 to 1: an error rate, a fault's probability (0.01 = 1 %).
    Share, 0.0, true, 1.0, "a share"
);
checked_number!(
    /// A share above 0 and at most 1: the part of a quota a client may use.
    Fraction, 0.0, false, 1.0, "a share of the quota"
);

checked_number!(
    /// How close a capacity search closes in: the lowest failing point at most this
    /// share above the highest passing one.
    Precision, 0.001, true, 1.0, "a precision (0.05 = 5 %)"
);
checked_number!(
    /// The share of its boundary load a replica is planned to carry (0.8 = 20 % spare).
    Headroom, 0.0, false, 1.0, "a share of the boundary load"
);

checked_count!(
    /// A whole number of at least 1 (per-minute quotas, budgets, attempts).
    Count, 1, MAX_COUNT, "a whole number"
);
checked_count!(
    /// How many requests (a workload's, a queue's).
    RequestCount, 1, MAX_REQUESTS, "a number of requests"
);
checked_count!(
    /// How many requests may be in flight at once.
    Concurrency, 1, MAX_IN_FLIGHT, "a number of requests in flight"
);
checked_count!(
    /// Threads of a runtime.
    ThreadCount, 1, MAX_THREADS, "a number of threads"
);
checked_count!(
    /// A size in bytes.
    ByteCount, 1, MAX_BYTES, "a number of bytes"
);
checked_count!(
    /// MiB of heap written before a run or a mock serves (0: none); at most 4 GiB,
    /// past which the kernel's compaction for huge pages costs more than it saves.
    WarmMib, 0, MAX_WARM_MIB, "a number of MiB"
);
checked_count!(
    /// CPU time in microseconds.
    CpuMicros, 1, MAX_CPU_WORK_US, "a number of microseconds"
);
checked_count!(
    /// Copies of a strategy run side by side.
    CopyCount, 1, 1024, "a number of copies"
);
checked_count!(
    /// A number of tokens, which may be 0 (a cache's smallest prefix, a shared prefix).
    TokenCount, 0, MAX_TOKENS as u64, "a number of tokens"
);
checked_count!(
    /// A queue length, which may be 0 (no waiting).
    QueueLength, 0, MAX_QUEUE, "a queue length"
);

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
