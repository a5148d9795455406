#!/usr/bin/env bash
# Mock capacity benchmark with the mock and the load generator on separate cores.
#
# Runs `llmbench mock` (one runtime thread) pinned to one core and `llmbench run` pinned
# to another, so the mock's pacing is measured without the client competing for its
# core. STREAMS streams open at once, each TOKENS tokens ITL_MS apart; the mock's own
# token lateness (how late each token went out against its deadline) is read from its
# /metrics endpoint, the client's view from the run's summary.
#
# Usage: [ARRIVAL=burst|steady] benches/mock/standalone.sh [STREAMS] [ITL_MS] [TOKENS]
#   defaults: 10000 streams, 20 ms, 100 tokens. Needs 2 cores, curl and taskset.
#   burst: all STREAMS start at once, so their tokens fall due in step (the worst case).
#   steady: streams arrive at a constant rate that keeps STREAMS in flight, for three
#   stream lifetimes, so token deadlines spread evenly (a busy server's normal state).
set -euo pipefail

streams=${1:-10000}
itl_ms=${2:-20}
tokens=${3:-100}
arrival=${ARRIVAL:-burst}
mock_core=${MOCK_CORE:-0}
client_core=${CLIENT_CORE:-1}

cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin llmbench
bin=target/release/llmbench
work=$(mktemp -d)
trap 'kill "${mock_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

cat >"$work/mock.toml" <<EOF
[mock]
ttft_ms = 20
itl_ms = $itl_ms
threads = 1
EOF

taskset -c "$mock_core" "$bin" mock "$work/mock.toml" --port 0 >"$work/mock.out" &
mock_pid=$!
for _ in $(seq 100); do
    grep -q listening "$work/mock.out" 2>/dev/null && break
    sleep 0.1
done
base_url=$(grep -o 'http://[^ ]*' "$work/mock.out")

case $arrival in
burst) workload="requests = $streams" ;;
steady)
    lifetime_s=$(awk "BEGIN { print (20 + ($tokens - 1) * $itl_ms) / 1000 }")
    workload="arrival = { kind = \"constant\", rate = $(awk "BEGIN { print $streams / $lifetime_s }") }
duration_s = $(awk "BEGIN { print 3 * $lifetime_s }")"
    ;;
*)
    echo "ARRIVAL must be burst or steady, not '$arrival'" >&2
    exit 2
    ;;
esac

cat >"$work/client.toml" <<EOF
name = "mock-standalone-$arrival-$streams"
description = "$streams concurrent streams, $itl_ms ms ITL, against a standalone mock on core $mock_core"

[target]
kind = "openai"
base_url = "$base_url"
model = "mock-model"

[workload]
$workload
prompt_tokens = 16
max_tokens = $tokens

[client]
timeout_s = 300

[[strategy]]
kind = "join_all"
runtime = "tokio-current"
client = "hyper"
EOF

echo "mock on core $mock_core at $base_url; client on core $client_core"
taskset -c "$client_core" "$bin" run "$work/client.toml" --yes -o results/bench --no-report
echo
echo "mock's own token lateness (seconds):"
curl -s "$base_url/metrics" >"$work/metrics"
grep -E '^llmbench_mock_(token_lateness|output_tokens|connections)' "$work/metrics"
# The mock's CPU per token sent, from its clock ticks (compare: cargo bench --bench loopback_floor).
tokens_sent=$(awk '/^llmbench_mock_output_tokens_total/ { print $2 }' "$work/metrics")
awk -v hz="$(getconf CLK_TCK)" -v n="$tokens_sent" '{
    printf "mock CPU per token: user %.2f µs, system %.2f µs\n", $14 / hz / n * 1e6, $15 / hz / n * 1e6
}' "/proc/$mock_pid/stat"
