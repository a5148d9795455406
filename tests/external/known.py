"""Writes known records: items 0 and 1 answered (E2E 200 ms, TTFT 50 ms, chunks 20 and
30 ms apart, 3 tokens), item 2 refused (429), and three loop-lag samples; and puts its
settings and the API key on stderr, which llmbench must save redacted."""
import json
import os
import sys
import time

print(json.dumps({"type": "ready"}), flush=True)
items = [json.loads(line) for line in sys.stdin]
key = os.environ.get(os.environ.get("LLMBENCH_API_KEY_ENV", ""), "")
for name in sorted(os.environ):
    if name.startswith("LLMBENCH_"):
        print(f"{name}={os.environ[name]}", file=sys.stderr)
print(f"the key is {key}", file=sys.stderr)
base = time.monotonic_ns()
ms = 1_000_000
time.sleep(0.25)
for item in items:
    i = item["index"]
    sent = base + i * ms
    record = {"index": i, "sent_ns": sent, "end_ns": sent + 200 * ms}
    if i < 2:
        record.update(chunk_ns=[sent + 50 * ms, sent + 70 * ms, sent + 100 * ms], status=200, outcome="ok", output_tokens=3)
    else:
        record.update(status=429, outcome="rate_limited", error=f"HTTP 429 for key {key}")
    print(json.dumps(record))
print(json.dumps({"type": "lag", "lag_ns": [1 * ms, 2 * ms, 7 * ms]}))
