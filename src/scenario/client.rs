//! `[client]`: the timeouts of each attempt, and how much of a response it may hold.

use super::values::{Count, Positive};
use serde::{Deserialize, Serialize};

/// The `[client]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Connecting (TCP and TLS).
    #[serde(default = "ten")]
    pub connect_timeout_s: Positive,
    /// The whole attempt, from sending to the last byte.
    #[serde(default = "five_minutes")]
    pub timeout_s: Positive,
    /// Silence between two reads of the response: a stalled stream fails as a timeout
    /// instead of hanging the run.
    #[serde(default = "one_minute")]
    pub idle_timeout_s: Positive,
    /// The longest SSE event (or line) accepted, in bytes; a longer one fails the
    /// request as a protocol error instead of growing memory.
    #[serde(default = "one_mebibyte")]
    pub max_event_bytes: Count,
    /// The largest whole (non-streamed) response body accepted, in bytes.
    #[serde(default = "sixty_four_mebibytes")]
    pub max_body_bytes: Count,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout_s: ten(),
            timeout_s: five_minutes(),
            idle_timeout_s: one_minute(),
            max_event_bytes: one_mebibyte(),
            max_body_bytes: sixty_four_mebibytes(),
        }
    }
}

fn ten() -> Positive {
    Positive(10.0)
}

fn five_minutes() -> Positive {
    Positive(300.0)
}

fn one_minute() -> Positive {
    Positive(60.0)
}

fn one_mebibyte() -> Count {
    Count(1 << 20)
}

fn sixty_four_mebibytes() -> Count {
    Count(64 << 20)
}
