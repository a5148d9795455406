//! `[client]`: the timeouts of each attempt, and how much of a response it may hold.

use super::values::{ByteCount, Seconds, WarmMib};
use serde::{Deserialize, Serialize};

/// The `[client]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Connecting (TCP and TLS).
    #[serde(default = "ten")]
    pub connect_timeout_s: Seconds,
    /// The whole attempt, from sending to the last byte.
    #[serde(default = "five_minutes")]
    pub timeout_s: Seconds,
    /// Silence between two reads of the response: a stalled stream fails as a timeout
    /// instead of hanging the run.
    #[serde(default = "one_minute")]
    pub idle_timeout_s: Seconds,
    /// The longest SSE event (or line) accepted, in bytes; a longer one fails the
    /// request as a protocol error instead of growing memory.
    #[serde(default = "one_mebibyte")]
    pub max_event_bytes: ByteCount,
    /// The largest whole (non-streamed) response body accepted, in bytes.
    #[serde(default = "sixty_four_mebibytes")]
    pub max_body_bytes: ByteCount,
    /// Heap written before the first request (0: none); unset, the plan's estimate of
    /// what the requests in flight will need.
    pub warm_heap_mib: Option<WarmMib>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout_s: ten(),
            timeout_s: five_minutes(),
            idle_timeout_s: one_minute(),
            max_event_bytes: one_mebibyte(),
            max_body_bytes: sixty_four_mebibytes(),
            warm_heap_mib: None,
        }
    }
}

fn ten() -> Seconds {
    Seconds(10.0)
}

fn five_minutes() -> Seconds {
    Seconds(300.0)
}

fn one_minute() -> Seconds {
    Seconds(60.0)
}

fn one_mebibyte() -> ByteCount {
    ByteCount(1 << 20)
}

fn sixty_four_mebibytes() -> ByteCount {
    ByteCount(64 << 20)
}
