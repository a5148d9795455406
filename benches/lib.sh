# Helpers the benchmark scripts source: real-time priority, and a standalone mock pinned
# to a core.

# The command prefix for both ends: `chrt -f 10` when REALTIME is set (needs root), so
# that on a machine shared with other work neither end waits for a core behind it.
priority=()
[ -z "${REALTIME:-}" ] || priority=(chrt -f 10)

# start_mock_on CORE LLMBENCH CONFIG OUT [ARGS…]: starts `LLMBENCH mock CONFIG --port 0
# ARGS…` pinned to CORE (at `priority`), its output in OUT, and waits until it listens;
# sets mock_pid and mock_url.
start_mock_on() {
    "${priority[@]}" taskset -c "$1" "$2" mock "$3" --port 0 "${@:5}" >"$4" &
    mock_pid=$!
    for _ in $(seq 100); do
        grep -q listening "$4" 2>/dev/null && break
        sleep 0.1
    done
    mock_url=$(grep -o 'http://[^ ]*' "$4")
}
