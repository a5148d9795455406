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

/// Appends `text` as a JSON string, exactly as `serde_json` writes it: copied between
/// quotes when nothing in it needs escaping (a prompt, a model name, a token's word,
/// almost always), else written by `serde_json` itself. Both the client's request body
/// and the mock's token frames write a string per request or token; `serde_json`'s
/// escape scan goes byte by byte.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    // A branch-free test of every byte, which the compiler vectorises; the rare string
    // that fails it is escaped by serde_json.
    let plain = !text.as_bytes().iter().fold(false, |seen, &b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text).expect("a string always serializes");
    }
}
