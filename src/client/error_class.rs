//! How a failed request is classified: the client decides, every later stage counts.

use serde::Serialize;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx (and 529).
    ServerError,
    /// Any other HTTP 4xx: the request itself was refused.
    ClientError,
    /// No complete answer within the client's timeout.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// The response could not be read: bad SSE or JSON, an error event, a truncated
    /// stream, a connection dropped mid-response.
    Protocol,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::RateLimited,
        ErrorClass::ServerError,
        ErrorClass::ClientError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Protocol,
    ];

    /// The class of an unsuccessful HTTP status.
    pub fn from_status(status: u16) -> ErrorClass {
        match status {
            429 => ErrorClass::RateLimited,
            500.. => ErrorClass::ServerError,
            _ => ErrorClass::ClientError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ServerError => "server_error",
            ErrorClass::ClientError => "client_error",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Protocol => "protocol",
        }
    }
}
