"""Starts a helper process, says where it is, and hangs without reading its items."""
import json
import subprocess
import sys
import time

helper = subprocess.Popen(["sleep", "1000"])
print(f"helper pid {helper.pid}", file=sys.stderr, flush=True)
print(json.dumps({"type": "ready"}), flush=True)
time.sleep(1000)
