//! Cutting secrets out of messages. The client sends credentials (the API key, header
//! values read from the environment); a gateway may echo them back in an error body or
//! an SSE error event, and every message the client produces goes into requests.csv and
//! onto the console. So each one passes through [`Redactor::redact`] first.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Shortest tail of a cut-off message taken for the start of a secret.
const MIN_PARTIAL: usize = 4;

/// The secrets one endpoint sends.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret (empty ones are ignored: they would match everywhere).
    pub fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is cut whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced by [`REDACTED`], and with a tail that is the
    /// start of a secret (a message cut to its first bytes mid-way through an echoed
    /// key) replaced too.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        for secret in &self.secrets {
            if let Some(at) = partial_tail(&out, secret) {
                out.replace_range(at.., REDACTED);
            }
        }
        out
    }
}

/// Where a tail of `text` of at least [`MIN_PARTIAL`] bytes begins that is a proper
/// prefix of `secret`, if there is one.
fn partial_tail(text: &str, secret: &str) -> Option<usize> {
    let longest = secret.len().saturating_sub(1).min(text.len());
    (MIN_PARTIAL..=longest)
        .rev()
        .map(|n| text.len() - n)
        .find(|&at| text.is_char_boundary(at) && secret.starts_with(&text[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secrets: &[&str]) -> Redactor {
        let mut r = Redactor::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    #[test]
    fn whole_and_repeated_secrets_are_replaced() {
        let r = redactor(&["sk-live-123456", "tok-abc"]);
        assert_eq!(
            r.redact("HTTP 401: bad key sk-live-123456 (sk-live-123456) via tok-abc"),
            "HTTP 401: bad key [redacted] ([redacted]) via [redacted]"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_cut_off_at_the_end_is_replaced() {
        let r = redactor(&["sk-live-123456"]);
        assert_eq!(r.redact("key: sk-live-12"), "key: [redacted]");
        assert_eq!(r.redact("ends in sk-"), "ends in sk-", "too short to tell");
    }

    #[test]
    fn empty_secrets_change_nothing_and_multibyte_text_survives() {
        let r = redactor(&["", "ключ-секрет"]);
        assert_eq!(r.redact("é ключ-се"), "é [redacted]");
        assert_eq!(redactor(&[""]).redact("text"), "text");
    }
}
