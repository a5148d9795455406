//! What the client spends per streamed token, the work that sits between a chunk's
//! arrival and its timestamp and so must stay far below the latencies it measures:
//! SSE framing, chunk parsing, and recording the inter-token gap.
//!
//! `cargo bench --bench client_hot_path`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmbench::client::{OpenAiChat, WireAdapter};
use llmbench::recorder::Recorder;
use llmbench::wire::sse::SseParser;
use llmbench::workload::WorkItem;
use std::hint::black_box;
use std::time::Duration;

const FRAMES: usize = 1_000;

/// A realistic stream of content chunks as OpenAI sends them.
fn stream_bytes() -> Vec<u8> {
    let frame = r#"data: {"id":"chatcmpl-000000000000000000000001","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let mut bytes = Vec::new();
    for _ in 0..FRAMES {
        bytes.extend_from_slice(frame.as_bytes());
        bytes.extend_from_slice(b"\n\n");
    }
    bytes
}

fn parse_stream(c: &mut Criterion) {
    let bytes = stream_bytes();
    let adapter = OpenAiChat {
        model: "gpt-4o-mini".into(),
        exact_length: false,
    };
    let mut group = c.benchmark_group("per token");
    group.throughput(Throughput::Elements(FRAMES as u64));
    // Network reads of ~1.5 KB: several frames per read, frames split across reads.
    group.bench_function("sse + chunk parse", |b| {
        b.iter(|| {
            let mut parser = SseParser::new();
            let mut tokens = 0u32;
            for read in bytes.chunks(1448) {
                parser
                    .feed(read, |event| {
                        tokens += adapter.stream_event(event).unwrap().content_chunks;
                    })
                    .unwrap();
            }
            black_box(tokens)
        })
    });
    let item = WorkItem {
        index: 3,
        prompt: None,
        at: Duration::ZERO,
        prompt_tokens: 1,
        max_tokens: 1,
        shared_prefix: 0,
    };
    let recorder = Recorder::new(
        64,
        1,
        Default::default(),
        std::sync::Arc::new(llmbench::recorder::NoSink),
    );
    group.bench_function("record inter-token gap", |b| {
        b.iter(|| {
            let mut sink = recorder.gap_sink(&item);
            for k in 0..FRAMES as u64 {
                sink(Duration::from_micros(10_000 + k));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse_stream);
criterion_main!(benches);
