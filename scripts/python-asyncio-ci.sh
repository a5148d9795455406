#!/usr/bin/env bash
# scenarios/python-asyncio.toml in a reduced form: 32 requests, a faster mock, 24 decode
# slots, one strategy of each kind, with the pinned virtual environment
# (scripts/python-venv.sh). Every Python client must run to completion, and each
# strategy's counts must equal the mock's own (one request per item, the 429s it sent,
# the tokens it streamed). Called by scripts/sdk-conformance.sh; a second or two per
# strategy on an idle machine, mostly the interpreter importing the SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/python-venv.sh
cargo build --quiet
work=target/ci-python-asyncio
rm -rf "$work"
mkdir -p "$work"
sed -e 's/^requests = 300$/requests = 32/' \
  -e 's/^ttft_ms = 100$/ttft_ms = 20/' \
  -e 's/^itl_ms = 10$/itl_ms = 2/' \
  -e 's/max_concurrent = 256,/max_concurrent = 24,/' \
  scenarios/python-asyncio.toml >"$work/python-asyncio.toml"
grep -q '^requests = 32$' "$work/python-asyncio.toml" || {
  echo "scenarios/python-asyncio.toml changed: update the reduction in $0" >&2
  exit 1
}
strategies=(joinset-16 py-gather py-gather-semaphore py-taskgroup-16 py-taskgroup-uvloop-64 py-httpx py-blocking py-cpu-to-thread)
target/debug/llmbench run "$work/python-asyncio.toml" "${strategies[@]/#/--strategy=}" -o "$work" --quiet --no-report >"$work/run.log" 2>&1 || {
  cat "$work/run.log" >&2
  exit 1
}
target/sdk-venv/bin/python - "$work"/python-asyncio-*/summary.json <<'PY'
import json
import sys

summary = json.load(open(sys.argv[1]))
problems = [f"{s['label']} skipped: {s['reason']}" for s in summary["skipped"]]
if not summary["complete"]:
    problems.append(f"incomplete run: missing {summary['missing_strategies']}")
for s in summary["strategies"]:
    label, counts, mock = s["label"], s["requests"], s["mock"]
    program = s.get("program")
    if program and program["outcome"] != "completed":
        problems.append(f"{label}: program {program['outcome']} ({program['exit']}): {program.get('problem')}, stderr: {program.get('stderr_tail')}")
    sent = counts["ok"] + counts["failed"]
    refused = mock["rate_limited"] + mock["queue_full"]
    checks = {
        "every item sent once": (sent, counts["total"]),
        "requests the mock saw": (sent, mock["requests"]),
        "429s": (counts["rate_limited"], refused),
        "tokens the mock streamed": (s["output_tokens"], mock["output_tokens_sent"]),
    }
    for what, (ours, theirs) in checks.items():
        if ours != theirs:
            problems.append(f"{label}: {what}: {ours} recorded, {theirs} by the mock")
    print(f"{label:28} ok {counts['ok']:3} 429 {counts['rate_limited']:3} mock requests {mock['requests']:3}")
if problems:
    sys.exit("python-asyncio (reduced):\n  " + "\n  ".join(problems))
print(f"python-asyncio (reduced): {len(summary['strategies'])} strategies, counts equal to the mock's")
PY
