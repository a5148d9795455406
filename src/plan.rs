//! What a run will send, shown before it sends it: the guard rail for paid APIs; and
//! what it will hold, the sockets and the heap, sized before it starts and set aside
//! then ([`Footprint::set_aside`]).
//!
//! Reads the scenario and its work items; sends nothing.

use crate::scenario::{Scenario, StrategyConfig, StrategyKind, Target};
use crate::workload::WorkItems;
use std::fmt;

pub struct Plan {
    pub target: String,
    pub loopback: bool,
    pub strategies: usize,
    /// Requests over all strategies (each strategy sends every work item), before
    /// retries.
    pub requests: u64,
    pub input_tokens: u64,
    /// The most output tokens the requests may produce (their `max_tokens`).
    pub max_output_tokens: u64,
    /// Dollars, when the target has prices: input plus the most output.
    pub max_cost: Option<f64>,
}

impl Plan {
    /// What running every strategy of `scenario` on `items` will send.
    pub fn of(scenario: &Scenario, items: &WorkItems) -> Plan {
        let strategies = scenario.strategies().count();
        let times = strategies as u64;
        let input_tokens = items
            .iter()
            .map(|i| u64::from(i.prompt_tokens))
            .sum::<u64>()
            * times;
        let max_output_tokens = items.iter().map(|i| u64::from(i.max_tokens)).sum::<u64>() * times;
        let max_cost = scenario.target.price().map(|p| {
            (input_tokens as f64 * p.input_per_million.0
                + max_output_tokens as f64 * p.output_per_million.0)
                / 1e6
        });
        Plan {
            target: scenario.target.describe(),
            loopback: scenario.target.is_loopback(),
            strategies,
            requests: items.len() as u64 * times,
            input_tokens,
            max_output_tokens,
            max_cost,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_target(f, &self.target, self.loopback)?;
        writeln!(
            f,
            "requests:       {} ({}, before retries)",
            self.requests,
            count_strategies(self.strategies)
        )?;
        writeln!(f, "input tokens:   {} (estimated)", self.input_tokens)?;
        writeln!(f, "output tokens:  at most {}", self.max_output_tokens)?;
        write_cost(f, self.max_cost)
    }
}

/// The plan's first line: where the requests go.
pub fn write_target(f: &mut fmt::Formatter<'_>, target: &str, loopback: bool) -> fmt::Result {
    let here = if loopback { " (this machine)" } else { "" };
    writeln!(f, "target:         {target}{here}")
}

/// The plan's cost line: the most it may cost, or how to know.
pub fn write_cost(f: &mut fmt::Formatter<'_>, max_cost: Option<f64>) -> fmt::Result {
    match max_cost {
        Some(cost) if cost < 1.0 => write!(f, "cost:           at most ${cost:.4}"),
        Some(cost) => write!(f, "cost:           at most ${cost:.2}"),
        None => write!(
            f,
            "cost:           unknown (set [target.price] to estimate it)"
        ),
    }
}

/// Descriptors a process needs besides its sockets: the runtimes, the results files,
/// the terminal, the listener.
const OTHER_DESCRIPTORS: u64 = 64;

/// The strategy that may hold the most sockets at once: its label, the requests it
/// may hold in flight and the sockets they take in this process. With the embedded
/// mock each connection takes two descriptors, the client's and the mock's; an
/// external program's end is in its own process.
fn peak_sockets<'a>(
    scenario: &Scenario,
    strategies: impl Iterator<Item = &'a StrategyConfig>,
    items: u64,
) -> Option<(String, u64, u64)> {
    strategies
        .map(|s| {
            let load = Load::of(scenario, s, items);
            let ends = u64::from(load.client_here) + u64::from(load.mock_here);
            (s.label(), load.in_flight, load.connections * ends)
        })
        .max_by_key(|&(_, _, sockets)| sockets)
}

/// What a process sets aside before it measures, so that neither grows while it is
/// measured: heap memory written once ([`crate::heap::warm`]) and a descriptor table
/// grown to its peak ([`crate::descriptors::reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of heap to warm.
    pub heap: u64,
    /// Descriptors the process may hold at once.
    pub descriptors: u64,
}

impl Footprint {
    /// The most any of `strategies` may take of each over `items` work items
    /// ([`heap_to_warm`], [`peak_descriptors`]).
    pub fn of<'a>(
        scenario: &Scenario,
        strategies: impl Iterator<Item = &'a StrategyConfig> + Clone,
        items: u64,
    ) -> Footprint {
        Footprint {
            heap: heap_to_warm(scenario, strategies.clone(), items),
            descriptors: peak_descriptors(scenario, strategies, items),
        }
    }

    /// Sets it aside, returning what warming the heap did.
    pub fn set_aside(self) -> crate::heap::Warmed {
        let warmed = crate::heap::warm(self.heap);
        crate::descriptors::reserve(self.descriptors);
        warmed
    }
}

/// The descriptors the run may hold at once, for [`crate::descriptors::reserve`]: the
/// sockets of the strategy that may hold the most, and the others every run has.
pub fn peak_descriptors<'a>(
    scenario: &Scenario,
    strategies: impl Iterator<Item = &'a StrategyConfig>,
    items: u64,
) -> u64 {
    let sockets = peak_sockets(scenario, strategies, items).map_or(0, |(_, _, n)| n);
    sockets.saturating_add(OTHER_DESCRIPTORS)
}

/// Why the run may run out of sockets, if it may: the strategy that could hold the most
/// connections open, against this process's open-file limit (`limit`).
pub fn socket_shortage(scenario: &Scenario, items: &WorkItems, limit: u64) -> Option<String> {
    let (label, in_flight, sockets) =
        peak_sockets(scenario, scenario.strategies(), items.len() as u64)?;
    if sockets + OTHER_DESCRIPTORS <= limit {
        return None;
    }
    let (sockets, standalone) = match scenario.target {
        Target::Mock { .. } => (
            format!(", {sockets} sockets with the embedded mock holding the other end of each,"),
            ", or run `llmbench mock` apart and target it (kind = \"openai\")",
        ),
        _ => (String::new(), ""),
    };
    Some(format!(
        "{label} may hold {in_flight} requests in flight{sockets} above this process's open-file limit of {limit}: cap the requests in flight (`limit`), raise the hard limit (`ulimit -Hn`){standalone}; requests past the limit fail at once as connect errors"
    ))
}

/// Heap to warm before the first of `strategies` runs over `items` work items
/// ([`crate::heap::warm`]), so that the run's
/// growth does not fault in while it is measured: a base for the histograms and
/// buffers every run has, and per request the strategy that may hold the most in
/// flight may hold (an open-loop strategy counts every item, not knowing the
/// latency), its connections and, with the embedded mock, the other end of each. The
/// figures are measured peaks, rounded up: at 1,000 streams in flight the client grew
/// by 15 MB over HTTP/2 and by 44 MB over HTTP/1.1, the mock by 8 and 25 MB.
/// Capped at 512 MiB, which P2's 10,000 HTTP/1.1 connections need (256 left it
/// faulting through its ramp-up); more makes the start slow, and a process that
/// warms much takes the huge pages another process (an under-warmed mock) would have
/// faulted in cheaply, leaving it to the kernel's compaction.
/// `[client] warm_heap_mib` replaces the estimate (0: no warming).
pub fn heap_to_warm<'a>(
    scenario: &Scenario,
    strategies: impl Iterator<Item = &'a StrategyConfig>,
    items: u64,
) -> u64 {
    const BASE: u64 = 16 << 20;
    const MOST: u64 = 512 << 20;
    if let Some(asked) = scenario.client.warm_heap_mib {
        return asked.0 << 20;
    }
    let per_strategy = strategies.map(|s| {
        let load = Load::of(scenario, s, items);
        let (client, mock) = (load.client_here, load.mock_here);
        let (stream, connection) = (
            heap_share(client, STREAM_HEAP) + heap_share(mock, MOCK_STREAM_HEAP),
            heap_share(client, CONNECTION_HEAP) + heap_share(mock, MOCK_CONNECTION_HEAP),
        );
        load.in_flight
            .saturating_mul(stream)
            .saturating_add(load.connections.saturating_mul(connection))
    });
    BASE.saturating_add(per_strategy.max().unwrap_or(0))
        .min(MOST)
}

/// What one strategy may hold at once over the run's work items, and which ends of its
/// connections are in this process: the client's unless an external program sends
/// (from its own process), the mock's when it is embedded.
struct Load {
    in_flight: u64,
    connections: u64,
    client_here: bool,
    mock_here: bool,
}

impl Load {
    fn of(scenario: &Scenario, strategy: &StrategyConfig, items: u64) -> Load {
        let in_flight = peak_in_flight(strategy, items);
        Load {
            in_flight,
            connections: peak_connections(strategy, in_flight),
            client_here: strategy.kind != StrategyKind::External,
            mock_here: matches!(scenario.target, Target::Mock { .. }),
        }
    }
}

/// `bytes` if that end of the connections is in this process, else nothing.
fn heap_share(here: bool, bytes: u64) -> u64 {
    if here { bytes } else { 0 }
}

/// The client's heap per request in flight (its task, stream state, parser), and per
/// HTTP/1.1 connection on top (its buffers); the same for the embedded mock's end.
const STREAM_HEAP: u64 = 16 << 10;
const CONNECTION_HEAP: u64 = 32 << 10;
const MOCK_STREAM_HEAP: u64 = 8 << 10;
const MOCK_CONNECTION_HEAP: u64 = 24 << 10;

/// The most connections `strategy` may hold with `in_flight` requests: one per request,
/// or over HTTP/2 (h2c with prior knowledge, or the one protocol its TLS offers) one per
/// copy of the strategy, every request a stream on it.
fn peak_connections(strategy: &StrategyConfig, in_flight: u64) -> u64 {
    match strategy.http2 {
        true => (strategy.copies() as u64).min(in_flight),
        false => in_flight,
    }
}

/// The most requests `strategy` may have in flight with `items` work items.
fn peak_in_flight(strategy: &StrategyConfig, items: u64) -> u64 {
    let copies = strategy.copies() as u64;
    strategy
        .in_flight_cap()
        .map_or(items, |cap| cap.saturating_mul(copies).min(items))
}

/// "1 strategy", "4 strategies".
pub fn count_strategies(n: usize) -> String {
    format!("{n} strateg{}", if n == 1 { "y" } else { "ies" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shortage(target: &str, strategy: &str, limit: u64) -> Option<String> {
        let src = format!(
            "name = \"s\"\n[target]\n{target}\n[workload]\nrequests = 1000\n[[strategy]]\nkind = \"serial\"\n[[strategy]]\n{strategy}\n"
        );
        let scenario = Scenario::parse(&src, "s.toml").unwrap();
        let items = crate::workload::load(&scenario).unwrap();
        socket_shortage(&scenario, &items, limit)
    }

    fn heap_mib(target: &str, strategy: &str, requests: u32) -> u64 {
        let src = format!(
            "name = \"s\"\n[target]\n{target}\n[workload]\nrequests = {requests}\n[[strategy]]\n{strategy}\n"
        );
        let scenario = Scenario::parse(&src, "s.toml").unwrap();
        let items = crate::workload::load(&scenario).unwrap();
        heap_to_warm(&scenario, scenario.strategies(), items.len() as u64) >> 20
    }

    #[test]
    fn the_heap_warmed_grows_with_what_may_be_in_flight_and_is_capped() {
        let mock = "kind = \"mock\"";
        let live = "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"";
        // One request: the base.
        assert_eq!(heap_mib(live, "kind = \"serial\"", 1000), 16);
        // 1,000 over HTTP/1.1: 48 KiB each; over HTTP/2 one connection, 16 KiB a stream.
        assert_eq!(heap_mib(live, "kind = \"join_all\"", 1000), 16 + 46);
        assert_eq!(
            heap_mib(live, "kind = \"join_all\"\nhttp2 = true", 1000),
            16 + 15
        );
        // A cap bounds the requests in flight, copies multiply it.
        assert_eq!(
            heap_mib(live, "kind = \"joinset\"\nlimit = 100", 1000),
            16 + 4
        );
        assert_eq!(
            heap_mib(live, "kind = \"joinset\"\nlimit = 100\ncopies = 4", 1000),
            16 + 18
        );
        // The embedded mock's end counts too; 100,000 open-loop requests hit the cap.
        assert_eq!(heap_mib(mock, "kind = \"join_all\"", 1000), 16 + 78);
        assert_eq!(heap_mib(mock, "kind = \"join_all\"", 100_000), 512);
        // An external program's requests are its own: only the mock's end is here.
        let external = "kind = \"external\"\ncommand = [\"p\"]\nlimit = 1000";
        assert_eq!(heap_mib(live, external, 1000), 16);
        assert_eq!(heap_mib(mock, external, 1000), 16 + 31);
        // The scenario's own figure replaces the estimate, 0 turning warming off.
        let asked = |mib: u32| format!("kind = \"join_all\"\n[client]\nwarm_heap_mib = {mib}");
        assert_eq!(heap_mib(mock, &asked(0), 1000), 0);
        assert_eq!(heap_mib(live, &asked(4096), 1000), 4096);
    }

    #[test]
    fn the_descriptors_reserved_are_the_peak_sockets_and_the_others() {
        let count = |target: &str, strategy: &str| {
            let src = format!(
                "name = \"s\"\n[target]\n{target}\n[workload]\nrequests = 1000\n[[strategy]]\nkind = \"serial\"\n[[strategy]]\n{strategy}\n"
            );
            let scenario = Scenario::parse(&src, "s.toml").unwrap();
            peak_descriptors(&scenario, scenario.strategies(), 1000)
        };
        let mock = "kind = \"mock\"";
        let live = "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"";
        // The strategy that may hold the most: 1,000 connections, both ends with the
        // embedded mock.
        assert_eq!(count(live, "kind = \"join_all\""), 1000 + 64);
        assert_eq!(count(mock, "kind = \"join_all\""), 2000 + 64);
        // Over HTTP/2 one connection; then the serial strategy's one is as many.
        assert_eq!(count(mock, "kind = \"join_all\"\nhttp2 = true"), 2 + 64);
        assert_eq!(count(live, "kind = \"joinset\"\nlimit = 100"), 100 + 64);
        // An external program's end of each connection is in its own process.
        let external = "kind = \"external\"\ncommand = [\"p\"]\nlimit = 1000";
        assert_eq!(count(mock, external), 1000 + 64);
        assert_eq!(count(live, external), 1 + 64);
    }

    #[test]
    fn sockets_are_counted_per_connection_end_against_the_limit() {
        let mock = "kind = \"mock\"";
        let live = "kind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"";
        // join_all: every item at once; with the embedded mock, both ends count.
        let why = shortage(mock, "kind = \"join_all\"", 2000).unwrap();
        assert!(
            why.starts_with("join_all may hold 1000 requests in flight, 2000 sockets"),
            "{why}"
        );
        assert!(why.contains("llmbench mock"), "{why}");
        assert_eq!(shortage(live, "kind = \"join_all\"", 2000), None);
        let why = shortage(live, "kind = \"join_all\"", 1000).unwrap();
        assert!(!why.contains("llmbench mock"), "{why}");
        // A cap bounds it, and the cap beyond the items is the items.
        assert_eq!(
            shortage(mock, "kind = \"joinset\"\nlimit = 400", 2000),
            None
        );
        assert!(shortage(mock, "kind = \"joinset\"\nlimit = 5000", 2000).is_some());
        // Over HTTP/2 every request is a stream of one connection (per copy).
        assert_eq!(
            shortage(mock, "kind = \"join_all\"\nhttp2 = true", 2000),
            None
        );
        assert_eq!(
            shortage(live, "kind = \"join_all\"\nhttp2 = true", 1000),
            None
        );
        let copies = "kind = \"join_all\"\nhttp2 = true\ncopies = 1000";
        assert!(shortage(live, copies, 1000).is_some());
    }
}
