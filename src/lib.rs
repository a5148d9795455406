//! llmbench: load-testing and throughput benchmarks for LLM endpoints.
//!
//! The modules follow the pipeline: [`scenario`] (configuration, the bottom layer) →
//! [`workload`] → [`strategy`] (dispatch) → [`client`] (wire protocol) → [`recorder`] →
//! [`result`] → [`summary`] (the saved schema, read by [`slo`], [`report`] and
//! [`compare`]; [`merge`] joins the parts of a sharded run), with [`runner`] on top and
//! [`capacity`] above it (a search of probes; its decisions are [`search`]'s, the quota
//! arithmetic [`quota`]'s and [`planner`]'s). The [`mock`] server is its own tree: it shares
//! [`wire`] with the client and reads only its configuration from [`scenario`] and its
//! buckets from [`quota`]. Each module imports only those below it; the README's Layout
//! section draws the whole, and `tests/architecture.rs` holds it.

pub mod budget;
pub mod capacity;
pub mod client;
pub mod compare;
pub mod cpu;
pub mod descriptors;
pub mod heap;
pub mod machine;
pub mod merge;
pub mod metric;
pub mod mock;
pub mod monitor;
pub mod plan;
pub mod planner;
pub mod quota;
pub mod recorder;
pub mod report;
pub mod result;
pub mod retry;
pub mod runner;
pub mod runtime;
pub mod scenario;
pub mod search;
pub mod shard;
pub mod slo;
pub mod strategy;
pub mod summary;
pub mod wire;
pub mod workload;
