//! Wire formats: the request and response bodies of the provider APIs, defined once and
//! shared by the client (which sends requests and parses responses) and the mock server
//! (which does the reverse). Nothing else is shared between the two.
//!
//! A leaf: imports nothing from the crate.

pub mod anthropic;
pub mod completions;
pub mod content;
pub mod openai;
pub mod responses;
pub mod sse;
