"""Answers the first item, then crashes with a traceback."""
import json
import sys
import time

print(json.dumps({"type": "ready"}), flush=True)
item = json.loads(sys.stdin.readline())
now = time.monotonic_ns()
print(json.dumps({"index": item["index"], "sent_ns": now, "end_ns": now, "outcome": "ok"}), flush=True)
raise RuntimeError("the client fell over")
