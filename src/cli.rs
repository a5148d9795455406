use clap::{Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  llmbench run scenarios/burst.toml            compare the strategies of burst.toml on the embedded mock
  llmbench run scenarios/smoke.toml -o /tmp/r  write the results under /tmp/r instead of results/
  llmbench validate scenarios/*.toml           check scenario files without running them

Exit codes: 0 success, 1 run failed, 2 invalid input (scenario or arguments), 130 interrupted.";

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
requests.csv, one .hgrm per strategy and metric, and a copy of the scenario.\n\
Ctrl-C stops the run and still saves what was measured; a second Ctrl-C quits at once."
    )]
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Folder to create the run's results folder in.
        #[arg(short, long, default_value = "results")]
        output: PathBuf,
        /// No progress bars.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check scenario files and print what each would run, without running anything.
    Validate {
        /// The scenario files (TOML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}
