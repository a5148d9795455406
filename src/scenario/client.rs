//! `[client]`: the timeouts of each attempt.

use super::values::Positive;
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout_s: ten(),
            timeout_s: five_minutes(),
            idle_timeout_s: one_minute(),
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
