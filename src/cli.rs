//! The command line: subcommands, options and the help text (clap derive).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  llmbench run scenarios/burst.toml            compare the strategies of burst.toml on the embedded mock
  llmbench run scenarios/smoke.toml -o /tmp/r  write the results under /tmp/r instead of results/
  llmbench validate scenarios/*.toml           check scenario files without running them
  llmbench mock scenarios/burst.toml --port 8000   serve the mock API for other tools
  llmbench report results/burst-20261124T071608Z   redraw charts and reports from saved results
  llmbench compare results/old results/new     per-strategy deltas, regressions flagged
  llmbench capacity scenarios/capacity.toml    the highest rate that meets [slo], probe by probe
  llmbench quota scenarios/quota.toml          a batch against a quota: binding limit, ETA, concurrency
  llmbench run s.toml --shard 1/3 --start-at 2026-11-29T12:00:00Z   part 1 of 3 of one run
  llmbench merge results/part-*/s-* -o results/merged   the parts as one results folder

Exit codes: 0 success, 1 run failed, 2 invalid input (scenario or arguments),
99 an SLO was missed or a regression found, 130, 143 or 129 interrupted by Ctrl-C,
SIGTERM or SIGHUP (results kept).";

/// Load-testing and throughput benchmarks for LLM endpoints: compare how dispatch
/// strategies (serial, join_all, semaphore, JoinSet) fare against a rate-limited API.
#[derive(Debug, Parser)]
#[command(name = "llmbench", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: every strategy on the same work, then a table and a results folder.
    #[command(
        after_help = "Results go to <OUTPUT>/<scenario>-<UTC timestamp>/: summary.json, \
requests.csv, one .hgrm and one .hdr per strategy and metric, and a copy of the scenario.\n\
Ctrl-C stops the run and still saves what was measured; a second Ctrl-C quits at once.\n\
Before the first strategy the process warms its heap and grows its descriptor table for \
the most the run may hold ([client] warm_heap_mib sets the heap; see the README's \
\"The warmed heap\" and \"The descriptor table\"), and measures what the runtime-lag \
probe costs each runtime, which the client CPU per request leaves out."
    )]
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        #[command(flatten)]
        send: SendArgs,
        /// Run only the strategy with this label (repeatable; `llmbench validate` lists
        /// the labels).
        #[arg(short, long = "strategy", value_name = "LABEL")]
        strategies: Vec<String>,
        /// Send only part I of N (from 0) of the work: the items whose index mod N is I,
        /// at their times in the whole schedule; `llmbench merge` joins the parts. Needs
        /// --start-at, one strategy and a target that is not the embedded mock.
        #[arg(long, value_name = "I/N", conflicts_with = "shards")]
        shard: Option<llmbench::shard::ShardSpec>,
        /// As --shard, with I read from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(llmbench::shard::MAX_SHARDS)))]
        shards: Option<u32>,
        /// Wait until TIME, then anchor the schedule at it: RFC 3339
        /// (2026-11-29T12:00:00Z) or Unix seconds; the common start of a run's parts.
        #[arg(long, value_name = "TIME")]
        start_at: Option<llmbench::shard::StartAt>,
    },
    /// Merge the results folders of a sharded run's parts into one results folder.
    #[command(
        after_help = "The parts must come from one scenario (the same hash), started together \
(--start-at; their starts at most --max-skew-ms apart), each shard index once. Counters and \
histograms add exactly; requests.csv is ordered by intended time, then index. \
Exit 2 when the parts do not fit together."
    )]
    Merge {
        /// The parts' results folders, or a folder holding them (one `run -o` for all).
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// The merged results folder to create (new or empty).
        #[arg(short, long)]
        output: PathBuf,
        /// Merge even with shards missing; the result is marked incomplete.
        #[arg(long)]
        allow_partial: bool,
        /// The most the parts' starts may be apart, in milliseconds.
        #[arg(long, default_value_t = llmbench::merge::DEFAULT_MAX_SKEW_MS, value_parser = skew_ms)]
        max_skew_ms: f64,
        /// No charts and reports (`llmbench report` draws them later).
        #[arg(long)]
        no_report: bool,
    },
    /// Redraw the charts and reports of a results folder from its saved files.
    Report {
        /// A results folder written by `llmbench run`.
        dir: PathBuf,
    },
    /// Compare two results folders strategy by strategy and flag regressions.
    Compare {
        /// The baseline results folder.
        baseline: PathBuf,
        /// The results folder to judge against it.
        candidate: PathBuf,
        /// A change for the worse beyond this many percent is a regression.
        #[arg(long, default_value_t = 10.0)]
        threshold: f64,
    },
    /// Serve the mock LLM API (OpenAI and Anthropic) until Ctrl-C.
    #[command(
        after_help = "Endpoints: POST /v1/chat/completions, /v1/completions and /v1/responses \
(OpenAI), POST /v1/messages (Anthropic), GET /v1/models, GET /metrics (its own and vLLM's \
names), GET /health; HTTP/1.1 and h2c on one port. The [mock] section of the scenario file configures latencies, limits \
and faults, exactly as for the embedded mock of `llmbench run`. Before listening it grows its \
descriptor table for 65,536 connections (within the open-file limit), so that accepting \
them never waits for the kernel to grow it."
    )]
    Mock {
        /// A scenario file whose [mock] section configures the server (default: defaults).
        scenario: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// MiB of heap to write before listening (0: none; at most a quarter of the
        /// memory left), so that serving streams does not wait for the kernel to back
        /// the memory they grow into.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=llmbench::scenario::limits::MAX_WARM_MIB))]
        warm_mib: u64,
    },
    /// Search the highest load (rate or concurrency) at which the scenario's strategy
    /// meets its [slo], as the [search] section says.
    #[command(
        after_help = "[search] keys: dimension (rate or concurrency), low, high, requests and/or \
duration_s per probe, repeats, precision, target_rate and headroom (replicas). Each probe is a \
strategy run saved in one results folder (summary.json holds the answer under `capacity`). \
Exit 0 with an answer, 99 when even the lowest point fails, 2 for a bad scenario; Ctrl-C keeps \
every finished probe and a partial answer."
    )]
    Capacity {
        /// The scenario file (TOML), with [search] and [slo].
        scenario: PathBuf,
        #[command(flatten)]
        send: SendArgs,
        /// The strategy to search with, when the scenario has several.
        #[arg(short, long = "strategy", value_name = "LABEL")]
        strategy: Option<String>,
    },
    /// Plan the scenario's batch against a provider quota ([quota]) without sending
    /// anything: binding limit, sustainable rate, ETA, concurrency, deadline, cost.
    #[command(
        after_help = "[quota] keys: rpm, tpm (OpenAI) or rpm, itpm, otpm and otpm_mode \
(Anthropic), headroom, output_tokens, deadline_s, and latency_from (a results folder) with \
latency_strategy for the concurrency estimate; without [quota], the [mock] section's \
rate limits. Exit 2 for a bad scenario."
    )]
    Quota {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Check scenario files and print what each would run, without running anything.
    Validate {
        /// The scenario files (TOML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

/// A skew tolerance: 0 to 10,000,000 ms.
fn skew_ms(s: &str) -> Result<f64, String> {
    let ms: f64 = s
        .parse()
        .map_err(|_| format!("expected milliseconds, got {s:?}"))?;
    if (0.0..=10_000_000.0).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("must be from 0 to 10,000,000 ms, got {s}"))
    }
}

/// The options of the commands that send requests (`run`, `capacity`).
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Folder to create the results folder in.
    #[arg(short, long, default_value = "results")]
    pub output: PathBuf,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Save the data only, without charts and reports (`llmbench report` draws them later).
    #[arg(long)]
    pub no_report: bool,
    /// Print the most it would send (requests, tokens, cost; a search's probes) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Send to a non-loopback endpoint without asking (it may cost money).
    #[arg(long)]
    pub yes: bool,
}
