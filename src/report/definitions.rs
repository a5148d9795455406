//! The metric definitions every report ends with (the README has the full version):
//! text only, shared by the Markdown and HTML reports; imports nothing.

/// Term and meaning, in the order the reports list them.
pub const DEFINITIONS: [(&str, &str); 7] = [
    (
        "E2E",
        "first attempt sent → last byte of the response, over successful requests",
    ),
    (
        "E2E from intended",
        "the item's intended start (its arrival) → last byte: includes the wait in the client's queue",
    ),
    (
        "TTFT",
        "the successful attempt sent → first non-empty content chunk",
    ),
    (
        "ITL",
        "every gap between consecutive non-empty content chunks, pooled",
    ),
    ("dispatch delay", "intended start → first attempt sent"),
    (
        "req/s, tok/s",
        "successful requests, and their output tokens, per second of makespan",
    ),
    ("makespan", "strategy start → end of its last response"),
];
