//! llmbench: load-testing and throughput benchmarks for LLM endpoints.
//!
//! The modules follow the pipeline: [`scenario`] → [`workload`] → [`strategy`]
//! (dispatch) → [`client`] (wire protocol) → [`recorder`] → [`result`] → [`report`].
//! What a run saves is the [`summary`] schema, which [`report`], [`compare`] and [`slo`]
//! read; latency metrics are named by [`metric::Metric`] alone.
//! The [`mock`] server is its own tree and shares only [`wire`] with the client (and
//! [`scenario`] for its configuration, [`quota`] for token buckets).

pub mod budget;
pub mod client;
pub mod compare;
pub mod cpu;
pub mod machine;
pub mod metric;
pub mod mock;
pub mod monitor;
pub mod plan;
pub mod quota;
pub mod recorder;
pub mod report;
pub mod result;
pub mod retry;
pub mod runner;
pub mod runtime;
pub mod scenario;
pub mod slo;
pub mod strategy;
pub mod summary;
pub mod wire;
pub mod workload;
