#!/usr/bin/env bash
# Mock capacity benchmark with the mock and the load generator on separate cores.
#
# Runs `llmbench mock` (one runtime thread) pinned to one core and the load generator
# pinned to another, so the mock's pacing is measured without the client competing for
# its core. STREAMS streams, each TOKENS tokens ITL_MS apart; the mock's own token
# lateness (how late each token went out against its deadline) and its CPU time per
# token are read from its /metrics endpoint and /proc.
#
# Usage: [CLIENT=llmbench|h2load] [ARRIVAL=burst|steady] benches/mock/standalone.sh [STREAMS] [ITL_MS] [TOKENS]
#   defaults: 10000 streams, 20 ms, 100 tokens. Needs 2 cores, curl and taskset.
#   CLIENT=llmbench (the default): `llmbench run` over HTTP/1.1, one connection per
#   stream; its own view of the streams is in the run's summary.
#   CLIENT=h2load: h2load (Debian's nghttp2-client, installed with apt-get if missing)
#   over HTTP/2 with prior knowledge, 1,000 streams per connection, as a gateway or an
#   HTTP/2 client multiplexes them.
#   burst: all STREAMS start at once, so their tokens fall due in step (the worst case).
#   steady: token deadlines spread evenly, as on a busy server: streams arrive at the
#   constant rate that keeps about STREAMS in flight, for three stream lifetimes (with
#   h2load, each connection its share, every connection on the same schedule). The
#   arrivals are a lifetime and 0.618 of an ITL apart over STREAMS, so that no two
#   streams' tokens fall due at the same instant: one lifetime over STREAMS alone is a
#   whole number of ITLs whenever STREAMS divides TOKENS (every 40 ms for 50 streams of
#   100 tokens at 20 ms), and any whole fraction of an ITL lines up some streams.
#   LLMBENCH=path runs that build of the mock instead of building this one.
#   REALTIME=1 runs the mock and the client at real-time priority (chrt -f; root), so
#   that on a machine shared with other work neither waits for a core behind it.
set -euo pipefail

streams=${1:-10000}
itl_ms=${2:-20}
tokens=${3:-100}
arrival=${ARRIVAL:-burst}
client=${CLIENT:-llmbench}
mock_core=${MOCK_CORE:-0}
client_core=${CLIENT_CORE:-1}

cd "$(dirname "$0")/../.."
source benches/lib.sh
bin=${LLMBENCH:-target/release/llmbench}
[ -n "${LLMBENCH:-}" ] || cargo build --release --quiet --bin llmbench
work=$(mktemp -d)
trap 'kill "${mock_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

ttft_ms=20
# A stream's lifetime, first token to last, and the arrivals' spacing (see steady above).
lifetime_ms=$(awk "BEGIN { print $ttft_ms + ($tokens - 1) * $itl_ms }")
spacing_of() { awk "BEGIN { print ($lifetime_ms + 0.618 * $itl_ms) / $1 }"; }

cat >"$work/mock.toml" <<EOF
[mock]
ttft_ms = $ttft_ms
itl_ms = $itl_ms
threads = 1
EOF

start_mock_on "$mock_core" "$bin" "$work/mock.toml" "$work/mock.out"
base_url=$mock_url

# The mock's own figures: its token lateness, its tokens, its CPU per token sent (from its
# clock ticks; compare: cargo bench --bench loopback_floor).
report_mock() {
    echo
    echo "mock's own token lateness (seconds):"
    curl -s "$base_url/metrics" >"$work/metrics"
    grep -E '^llmbench_mock_(token_lateness|output_tokens|connections)' "$work/metrics"
    tokens_sent=$(awk '/^llmbench_mock_output_tokens_total/ { print $2 }' "$work/metrics")
    awk -v hz="$(getconf CLK_TCK)" -v n="$tokens_sent" '{
        printf "mock CPU per token: user %.2f µs, system %.2f µs\n", $14 / hz / n * 1e6, $15 / hz / n * 1e6
    }' "/proc/$mock_pid/stat"
}

if [ "$client" = h2load ]; then
    if ! command -v h2load >/dev/null; then
        apt-get install -y nghttp2-client >/dev/null || { apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null; }
    fi
    per_connection=$((streams < 1000 ? streams : 1000))
    connections=$(((streams + per_connection - 1) / per_connection))
    # Each connection sends its requests at these offsets (milliseconds): its streams all
    # at 0 (burst), or three streams' lifetimes of arrivals at the rate that keeps
    # per_connection streams in flight (steady), so the ramp-up is gradual and most
    # tokens fall in the steady state.
    case $arrival in
    burst) requests=$per_connection spacing_ms=0 ;;
    steady)
        requests=$((3 * per_connection))
        spacing_ms=$(spacing_of "$per_connection")
        ;;
    *)
        echo "ARRIVAL must be burst or steady, not '$arrival'" >&2
        exit 2
        ;;
    esac
    awk -v n="$requests" -v ms="$spacing_ms" -v url="$base_url/v1/chat/completions" \
        'BEGIN { for (i = 0; i < n; i++) printf "%.3f\t%s\n", i * ms, url }' >"$work/timing"
    printf '{"model": "mock-model", "stream": true, "max_tokens": %d, "messages": [{"role": "user", "content": "one two three four five six seven eight nine ten eleven twelve"}]}' \
        "$tokens" >"$work/body.json"
    echo "mock on core $mock_core at $base_url; h2load on core $client_core: $connections connections of $per_connection streams ($requests requests each)"
    # -m leaves room for streams that run late; -n is per connection with a script.
    taskset -c "$client_core" "${priority[@]}" h2load -c "$connections" -m $((2 * per_connection)) -n "$requests" \
        --timing-script-file="$work/timing" -d "$work/body.json" -H 'content-type: application/json' |
        grep -E '^(finished in|requests:|status codes:|traffic:)'
    report_mock
    exit 0
fi

case $arrival in
burst) workload="requests = $streams" ;;
steady)
    workload="arrival = { kind = \"constant\", rate = $(awk "BEGIN { print 1000 / $(spacing_of "$streams") }") }
duration_s = $(awk "BEGIN { print 3 * $lifetime_ms / 1000 }")"
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
taskset -c "$client_core" "${priority[@]}" "$bin" run "$work/client.toml" --yes -o results/bench --no-report
report_mock
