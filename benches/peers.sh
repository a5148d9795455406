#!/usr/bin/env bash
# The instrument's own limits, measured: llmbench beside oha against nginx (P1), 10,000
# concurrent streams (P2) and 1,000 fast streams (P3) against a standalone mock on the
# other core, and the peak memory of long runs beside oha's.
#
# Usage: benches/peers.sh [throughput|streams|overhead|memory|all]   (default: all)
#   ROUNDS=3            P1 rounds, oha and llmbench alternated
#   P1_REQUESTS=200000  requests per P1 run
#   MEMORY_RUNS="1000000 10000000"  request counts of the peak-memory runs
#   SERVER_CORE=0 CLIENT_CORE=1     the cores the server and the client are pinned to
#   HTTP2=1             P2 and P3 over HTTP/2 (h2c, every stream on one connection)
#                       instead of HTTP/1.1
#   LLMBENCH=path       runs that build (the client and the mock) instead of building
#                       this one: two builds side by side, say
#   REALTIME=1          runs both ends at real-time priority (chrt -f; root), so that on
#                       a machine shared with other work neither waits behind it
#
# Installs what it needs when missing: nginx (Debian package, through apt-get),
# oha (`cargo install oha --locked --root target/tools`). Needs taskset, jq, awk and
# GNU time (/usr/bin/time). Prints each measurement and checks the stated tolerances;
# exits 1 if any check failed. Results go to results/peers/.
set -euo pipefail

what=${1:-all}
rounds=${ROUNDS:-3}
p1_requests=${P1_REQUESTS:-200000}
memory_runs=${MEMORY_RUNS:-"1000000 10000000"}
server_core=${SERVER_CORE:-0}
client_core=${CLIENT_CORE:-1}

cd "$(dirname "$0")/.."
source benches/lib.sh
root=$PWD
out=$root/results/peers
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
failed=0
check() { # check NAME CONDITION-TEXT AWK-EXPRESSION
    if awk "BEGIN { exit !($3) }"; then
        echo "  ok:     $1 ($2)"
    else
        echo "  MISSED: $1 ($2)"
        failed=1
    fi
}

# --- tools -----------------------------------------------------------------------------
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
oha=$root/target/tools/bin/oha
if [ ! -x "$oha" ]; then
    echo "installing oha into target/tools (cargo install)"
    cargo install oha --locked --root target/tools --quiet
fi
if [ -n "${LLMBENCH:-}" ]; then
    llmbench=$(realpath "$LLMBENCH")
else
    cargo build --release --quiet --bin llmbench
    llmbench=$root/target/release/llmbench
fi

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

summary_of() { # the summary.json of the newest results folder under $1
    ls -td "$1"/*/ | head -1 | sed 's|/$||;s|$|/summary.json|'
}

# --- nginx: one worker, a static chat completion, HTTP/1.1 and h2c ----------------------
body='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":16,"completion_tokens":9,"total_tokens":25}}'
# What llmbench sends for item 0 of the workload below (prompt_tokens = 16).
request='{"model":"m","messages":[{"role":"user","content":"item-0 hotel oscar victor charlie juliett quebec xray echo lima sierra zulu golf november uniform bravo"}],"max_completion_tokens":16,"stream":false}'

start_nginx() {
    h1_port=$(free_port)
    h2_port=$(free_port)
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $work/nginx;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    http2_max_concurrent_streams 128;
    server {
        listen 127.0.0.1:$h1_port;
        listen 127.0.0.1:$h2_port http2;
        location / {
            default_type application/json;
            return 200 '$body';
        }
    }
}
EOF
    "${priority[@]}" taskset -c "$server_core" "$nginx" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    pids+=($!)
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$h1_port/" && break
        sleep 0.1
    done
}

# A llmbench scenario of REQUESTS non-streamed requests, joinset 64, default client and
# runtime, against nginx: llmbench_scenario NAME PORT REQUESTS [EXTRA-STRATEGY-LINES]
llmbench_scenario() {
    cat >"$work/$1.toml" <<EOF
name = "$1"
[target]
kind = "openai"
base_url = "http://127.0.0.1:$2"
model = "m"
[workload]
requests = $3
stream = false
prompt_tokens = 16
max_tokens = 16
[[strategy]]
kind = "joinset"
limit = 64
${4:-}
EOF
    echo "$work/$1.toml"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- P1: raw throughput beside oha -------------------------------------------------------
throughput() {
    start_nginx
    for proto in http1 http2; do
        local port=$h1_port oha_flags="" extra=""
        if [ $proto = http2 ]; then port=$h2_port oha_flags="--http2" extra="http2 = true"; fi
        local scenario
        scenario=$(llmbench_scenario "p1-$proto" "$port" "$p1_requests" "$extra")
        echo
        echo "P1 $proto: oha -c 64 -n $p1_requests -m POST $oha_flags vs llmbench joinset 64 (default client and runtime), client on core $client_core, nginx on core $server_core"
        : >"$work/oha-$proto" && : >"$work/llmbench-$proto"
        for round in $(seq "$rounds"); do
            local oha_rps llmbench_rps
            oha_rps=$("${priority[@]}" taskset -c "$client_core" "$oha" -c 64 -n "$p1_requests" -m POST $oha_flags \
                -H 'content-type: application/json' -d "$request" --no-tui \
                "http://127.0.0.1:$port/v1/chat/completions" | awk '/Requests\/sec/ { print $2 }')
            "${priority[@]}" taskset -c "$client_core" "$llmbench" run "$scenario" -q --no-report -o "$out/p1" >/dev/null
            llmbench_rps=$(jq '.strategies[0].requests_per_s' "$(summary_of "$out/p1")")
            echo "$oha_rps" >>"$work/oha-$proto"
            echo "$llmbench_rps" >>"$work/llmbench-$proto"
            printf '  round %d: oha %8.0f req/s   llmbench %8.0f req/s   (%.2fx)\n' \
                "$round" "$oha_rps" "$llmbench_rps" "$(awk "BEGIN { print $llmbench_rps / $oha_rps }")"
        done
        local oha_median llmbench_median
        oha_median=$(median <"$work/oha-$proto")
        llmbench_median=$(median <"$work/llmbench-$proto")
        printf '  medians: oha %.0f, llmbench %.0f req/s: %.2fx oha\n' "$oha_median" "$llmbench_median" \
            "$(awk "BEGIN { print $llmbench_median / $oha_median }")"
        check "P1 $proto" "target: at least 1.0x oha" "$llmbench_median >= $oha_median"
    done
}

# --- a standalone mock on the server core -------------------------------------------------
# The mock's heap, warmed for the streams a run will hold: about 25 KiB per HTTP/1.1
# connection, 8 KiB per HTTP/2 stream (see the README's "The warmed heap"). P2's 10,000
# connections outgrow the default 64 MiB: warmed that far only, the mock's own lateness
# p99 was 6.5 ms, faulting in the rest; with 320 MiB, 0.7-0.9 ms.
start_mock() { # start_mock TTFT_MS ITL_MS STREAMS
    cat >"$work/mock.toml" <<EOF
[mock]
ttft_ms = $1
itl_ms = $2
threads = 1
EOF
    local per_stream_kib=32
    [ -z "${HTTP2:-}" ] || per_stream_kib=8
    start_mock_on "$server_core" "$llmbench" "$work/mock.toml" "$work/mock.out" \
        --warm-mib $((64 + $3 * per_stream_kib / 1024))
    pids+=("$mock_pid")
}

stop_mock() {
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
}

# The mock's own token lateness quantile (ms) from its /metrics.
mock_lateness_ms() {
    curl -s "$mock_url/metrics" |
        awk -v q="$1" '/^llmbench_mock_token_lateness_seconds\{/ && index($0, "quantile=\"" q "\"") { print $2 * 1000 }'
}

# Streams against the standalone mock: streams_run NAME TTFT ITL TOKENS RATE REQUESTS IN-FLIGHT
streams_run() {
    local name=$1 ttft=$2 itl=$3 tokens=$4 rate=$5 requests=$6 streams=$7
    start_mock "$ttft" "$itl" "$streams"
    cat >"$work/$name.toml" <<EOF
name = "$name"
[target]
kind = "openai"
base_url = "$mock_url"
model = "m"
[workload]
arrival = { kind = "constant", rate = $rate }
requests = $requests
stream = true
prompt_tokens = 16
max_tokens = $tokens
[client]
timeout_s = 300
[[strategy]]
kind = "join_all"
${HTTP2:+http2 = true}
EOF
    "${priority[@]}" taskset -c "$client_core" "$llmbench" run "$work/$name.toml" -q --no-report -o "$out/$name" >/dev/null || true
    summary=$(summary_of "$out/$name")
    lateness_p50=$(mock_lateness_ms 0.5)
    lateness_p99=$(mock_lateness_ms 0.99)
    stop_mock
    ok=$(jq '.strategies[0].requests.ok' "$summary")
    ttft_p50=$(jq '.strategies[0].latency_ms.ttft.p50' "$summary")
    ttft_p99=$(jq '.strategies[0].latency_ms.ttft.p99' "$summary")
    itl_p99=$(jq '.strategies[0].latency_ms.itl.p99' "$summary")
    cpu=$(jq '.strategies[0].client_cpu_s // 0' "$summary")
    tokens_total=$(jq '.strategies[0].output_tokens' "$summary")
    lag=$(jq '.strategies[0].client_health.lag_ms.p99 // "n/a"' "$summary")
    echo "  $ok/$requests ok; TTFT p50/p99 $ttft_p50/$ttft_p99 ms (mock: $ttft + lateness p50/p99 $lateness_p50/$lateness_p99 ms); ITL p99 $itl_p99 ms (configured $itl); client CPU $(awk "BEGIN { printf \"%.2f ms per request, %.1f µs per token\", $cpu * 1000 / $requests, $cpu * 1e6 / ($tokens_total > 0 ? $tokens_total : 1) }"); runtime lag p99 $lag ms"
}

streams() {
    echo
    echo "P2: 10,000 streams (mock on core $server_core: TTFT 200 ms, ITL 500 ms, 8 tokens; constant 2,700/s for 20,000; default client on core $client_core${HTTP2:+, over HTTP/2})"
    streams_run p2-streams 200 500 8 2700 20000 10000
    check "P2 every request succeeds" "$ok of 20000" "$ok == 20000"
    check "P2 TTFT p99" "$ttft_p99 ms, within 5 ms of the mock's $(awk "BEGIN { print 200 + $lateness_p99 }")" "$ttft_p99 <= 200 + $lateness_p99 + 5"
    check "P2 ITL p99" "$itl_p99 ms, within 5 ms of 500" "$itl_p99 <= 505"
}

overhead() {
    echo
    echo "P3: 1,000 streams at 20 ms ITL (mock on core $server_core: TTFT 100 ms, 50 tokens; constant 925/s for 3,000; default client on core $client_core${HTTP2:+, over HTTP/2})"
    streams_run p3-overhead 100 20 50 925 3000 1000
    check "P3 every request succeeds" "$ok of 3000" "$ok == 3000"
    check "P3 TTFT p50" "$ttft_p50 ms, within 1 ms of the mock's $(awk "BEGIN { print 100 + $lateness_p50 }")" "$ttft_p50 <= 100 + $lateness_p50 + 1"
    check "P3 TTFT p99" "$ttft_p99 ms, within 5 ms of the mock's $(awk "BEGIN { print 100 + $lateness_p99 }")" "$ttft_p99 <= 100 + $lateness_p99 + 5"
    check "P3 ITL p99" "$itl_p99 ms, within 5 ms of 20" "$itl_p99 <= 25"
}

# --- peak memory --------------------------------------------------------------------------
peak_rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }

memory() {
    [ -n "${h1_port:-}" ] || start_nginx
    echo
    echo "Peak memory (max RSS of the whole process), non-streamed requests, 64 in flight, client on core $client_core:"
    local first=""
    for n in $memory_runs; do
        local scenario
        scenario=$(llmbench_scenario "memory-$n" "$h1_port" "$n")
        "${priority[@]}" taskset -c "$client_core" /usr/bin/time -v "$llmbench" run "$scenario" -q -o "$out/memory" \
            >/dev/null 2>"$work/time-llmbench-$n" || true
        "${priority[@]}" taskset -c "$client_core" /usr/bin/time -v "$oha" -c 64 -n "$n" -m POST --no-tui \
            -H 'content-type: application/json' -d "$request" \
            "http://127.0.0.1:$h1_port/v1/chat/completions" >/dev/null 2>"$work/time-oha-$n" || true
        local mine theirs
        mine=$(peak_rss_mb "$work/time-llmbench-$n")
        theirs=$(peak_rss_mb "$work/time-oha-$n")
        echo "  $n requests: llmbench run (report included) $mine MB, oha $theirs MB"
        check "memory at $n" "$mine MB, below 100 MB" "$mine < 100"
        if [ -z "$first" ]; then
            first=$mine
        else
            check "memory flat" "$mine MB vs $first MB, within 10 %" "$mine <= $first * 1.1"
        fi
    done
}

case $what in
throughput) throughput ;;
streams) streams ;;
overhead) overhead ;;
memory) memory ;;
all)
    throughput
    streams
    overhead
    memory
    ;;
*)
    echo "usage: benches/peers.sh [throughput|streams|overhead|memory|all]" >&2
    exit 2
    ;;
esac
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
