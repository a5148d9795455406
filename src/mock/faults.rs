//! Faults the mock injects: HTTP errors, and for streams an error event, a dropped
//! connection, a stall or malformed SSE half-way through. A request forces one with the
//! `x-llmbench-fault` header (tests use this to be deterministic); otherwise each kind
//! happens with its configured probability, drawn from the request's own RNG.
//!
//! Owns which fault strikes; what a fault does to a response is `stream`'s and the
//! pipeline's, and how it reads on the wire each API's.

use crate::scenario::FaultConfig;
use std::str::FromStr;

/// The header that forces a fault on one request.
pub const FAULT_HEADER: &str = "x-llmbench-fault";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP error status instead of a completion: 429, 500, 503 or 529.
    Status(u16),
    /// The connection is closed half-way through the response.
    Disconnect,
    /// The response stops half-way for `stall_s`, longer than a client should wait.
    Stall,
    /// The API's error event half-way through a stream (status 200 already sent).
    ErrorEvent,
    /// A frame that is not valid SSE JSON half-way through a stream.
    Malformed,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        Ok(match s.trim() {
            "429" => Fault::Status(429),
            "500" => Fault::Status(500),
            "503" => Fault::Status(503),
            "529" => Fault::Status(529),
            "disconnect" => Fault::Disconnect,
            "stall" => Fault::Stall,
            "error-event" => Fault::ErrorEvent,
            "malformed" => Fault::Malformed,
            other => {
                return Err(format!(
                    "unknown {FAULT_HEADER} value \"{other}\": use 429, 500, 503, 529, disconnect, stall, error-event or malformed"
                ));
            }
        })
    }
}

impl FaultConfig {
    /// The fault for a request whose roll (uniform in [0, 1)) is `roll`: the kinds take
    /// consecutive slices of [0, 1) in a fixed order, so their probabilities add up.
    pub fn pick(&self, roll: f64) -> Option<Fault> {
        let kinds = [
            (self.error_429, Fault::Status(429)),
            (self.error_500, Fault::Status(500)),
            (self.error_503, Fault::Status(503)),
            (self.error_529, Fault::Status(529)),
            (self.disconnect, Fault::Disconnect),
            (self.stall, Fault::Stall),
            (self.error_event, Fault::ErrorEvent),
            (self.malformed, Fault::Malformed),
        ];
        let mut edge = 0.0;
        kinds.into_iter().find_map(|(p, fault)| {
            edge += p.0;
            (roll < edge).then_some(fault)
        })
    }

    pub fn stall_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.stall_s.map_or(600.0, |s| s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Share;

    #[test]
    fn probabilities_take_consecutive_slices() {
        let config = FaultConfig {
            error_500: Share(0.1),
            disconnect: Share(0.2),
            ..FaultConfig::default()
        };
        assert_eq!(config.pick(0.05), Some(Fault::Status(500)));
        assert_eq!(config.pick(0.25), Some(Fault::Disconnect));
        assert_eq!(config.pick(0.31), None);
        assert_eq!(FaultConfig::default().pick(0.0), None);
    }

    #[test]
    fn header_values() {
        assert_eq!("529".parse(), Ok(Fault::Status(529)));
        assert_eq!("error-event".parse(), Ok(Fault::ErrorEvent));
        assert!(
            "404"
                .parse::<Fault>()
                .unwrap_err()
                .contains("unknown x-llmbench-fault value \"404\"")
        );
    }
}
