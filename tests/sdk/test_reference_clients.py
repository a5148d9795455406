"""The reference Python client (clients/python/taskgroup.py, the official SDKs through
clients/python/sdk.py) against `llmbench mock`: AsyncOpenAI on completions and
AsyncAnthropic on messages (chat is run by scripts/python-asyncio-ci.sh). Items are
written by hand, as llmbench would; every one must come back answered, with its
chunks timed."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

URL = os.environ["LLMBENCH_MOCK_URL"]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def item(index):
    return {
        "index": index,
        "intended_ns": time.monotonic_ns(),
        "prompt": f"item-{index} name three colours",
        "prompt_tokens": 4,
        "max_tokens": 5,
        "stream": True,
    }


@pytest.mark.parametrize("api", ["completions", "messages"])
def test_the_taskgroup_pool_answers_every_item(api):
    items = "".join(json.dumps(item(i)) + "\n" for i in range(3))
    env = dict(os.environ, LLMBENCH_BASE_URL=URL, LLMBENCH_API=api, LLMBENCH_LIMIT="2")
    out = subprocess.run(
        [sys.executable, "clients/python/taskgroup.py"],
        input=items,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0] == {"type": "ready"}
    requests = sorted((r for r in lines if "index" in r), key=lambda r: r["index"])
    got = [(r["index"], r["outcome"], r["status"], r["output_tokens"], len(r["chunk_ns"])) for r in requests]
    assert got == [(i, "ok", 200, 5, 5) for i in range(3)]
    for r in requests:
        assert r["sent_ns"] <= r["chunk_ns"][0] <= r["chunk_ns"][-1] <= r["end_ns"]
    assert any(line.get("type") == "lag" for line in lines), "the heartbeat's lag is reported"
