"""Reads its four items and lies: a record for an item it never had, item 0 twice,
item 1 ending before it was sent, item 2 in the future, a line that is not JSON; item 3
is answered truthfully."""
import json
import sys
import time

print(json.dumps({"type": "ready"}), flush=True)
items = [json.loads(line) for line in sys.stdin]
now = time.monotonic_ns()
s = 1_000_000_000


def record(index, sent, end):
    print(json.dumps({"index": index, "sent_ns": sent, "end_ns": end, "outcome": "ok"}))


record(0, now, now)
record(99, now, now)
record(0, now, now)
record(1, now, now - 1)
record(2, now, now + 60 * s)
print("this is not a record")
record(3, now, now)
