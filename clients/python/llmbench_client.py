"""Speak llmbench's external-strategy protocol from Python (standard library only).

llmbench starts your program with its settings in ``LLMBENCH_*`` environment variables,
writes each work item as a JSON line on its stdin at the item's due time, and reads one
JSON line per request from its stdout (the README's "External strategies" section is the
reference). This module does the protocol, the timing and a heartbeat that measures the
event loop's lag, so a measured strategy is a few lines around your own call::

    import asyncio
    import llmbench_client as lb

    async def call(item):
        async with lb.measure(item) as request:      # sent now; the record is written
            async for text in my_stream(item.prompt):  # at the end, failures included
                if text:
                    request.chunk()                   # a non-empty content chunk, now
            request.output_tokens = ...                # from the server's usage, if any

    async def main(settings, items):
        async with asyncio.TaskGroup() as group:
            async for item in items:
                group.create_task(call(item))

    lb.run(main)                                      # `--uvloop` on the command line: uvloop

All times are ``time.monotonic_ns()``: CLOCK_MONOTONIC, the clock llmbench reads, so the
records land on llmbench's timeline exactly. A failed call is recorded with an outcome
from llmbench's error classes (``classify``) and does not end the program.
"""

import asyncio
import dataclasses
import json
import os
import stat
import sys
import time

#: How often the heartbeat asks to wake, as llmbench's own runtime probe does.
HEARTBEAT_NS = 1_000_000
#: How often the lag samples are written out, and the most held before that.
LAG_FLUSH_NS = 100_000_000
LAG_BATCH = 4096
#: Longest work-item line read (a long real prompt).
MAX_ITEM_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class Settings:
    """What llmbench tells the program."""

    base_url: str  #: the server's root, without ``/v1``
    api: str  #: ``chat``, ``completions``, ``messages`` or ``responses``
    model: str
    limit: int | None  #: the strategy's ``limit``; ``None`` when it has none
    zero_ns: int  #: the strategy's start on CLOCK_MONOTONIC
    api_key: str  #: the target's key (read from its own variable), or a placeholder
    timeout_s: float  #: ``[client] timeout_s``: one request, sent to last byte

    @staticmethod
    def from_env(env=os.environ):
        key_env = env.get("LLMBENCH_API_KEY_ENV", "")
        limit = env.get("LLMBENCH_LIMIT", "")
        return Settings(
            base_url=env["LLMBENCH_BASE_URL"].rstrip("/").removesuffix("/v1"),
            api=env.get("LLMBENCH_API", "chat"),
            model=env.get("LLMBENCH_MODEL", "llmbench-mock"),
            limit=int(limit) if limit else None,
            zero_ns=int(env.get("LLMBENCH_ZERO_NS", "0")),
            api_key=env.get(key_env, "") if key_env else "llmbench-no-key",
            timeout_s=float(env.get("LLMBENCH_TIMEOUT_S", "300")),
        )


@dataclasses.dataclass(frozen=True)
class Item:
    """One work item, as llmbench gives it."""

    index: int
    intended_ns: int  #: when it arrived (was due), on CLOCK_MONOTONIC
    prompt: str
    prompt_tokens: int
    max_tokens: int
    stream: bool


ERROR_CLASSES = ("rate_limited", "server_error", "client_error", "timeout", "connect", "protocol")


def emit(record):
    """Writes one record line to stdout."""
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def classify(exc):
    """llmbench's error class of an exception, and its HTTP status if it has one.

    Duck-typed, so it needs no SDK: a ``status_code`` (openai, anthropic) or a
    ``response.status_code`` (httpx) is a status; otherwise the exception's class names
    say ``timeout`` or ``connect``; anything else is ``protocol``.
    """
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and status >= 400:
        kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else "client_error"
        return kind, status
    names = " ".join(c.__name__.lower() for c in type(exc).__mro__)
    if "timeout" in names:
        return "timeout", None
    if "connect" in names:
        return "connect", None
    return "protocol", None


class Request:
    """The timing of one request; written as a record when it ends."""

    def __init__(self, item):
        self.item = item
        self.sent_ns = time.monotonic_ns()
        self.chunk_ns = []
        self.status = None
        #: the server's count, if it says; llmbench counts the chunks otherwise
        self.output_tokens = None

    def chunk(self):
        """A non-empty content chunk arrived now."""
        self.chunk_ns.append(time.monotonic_ns())

    def record(self, outcome="ok", error=None):
        record = {
            "index": self.item.index,
            "sent_ns": self.sent_ns,
            "end_ns": time.monotonic_ns(),
            "chunk_ns": self.chunk_ns,
            "status": self.status,
            "outcome": outcome,
        }
        if self.output_tokens is not None:
            record["output_tokens"] = self.output_tokens
        if error is not None:
            record["error"] = error[:400]
        return record


class measure:
    """``async with measure(item) as request:`` times a call and writes its record;
    an exception inside is recorded with its class and not raised further."""

    def __init__(self, item):
        self.request = Request(item)

    async def __aenter__(self):
        return self.request

    async def __aexit__(self, kind, exc, tb):
        if exc is None:
            if self.request.status is None:
                self.request.status = 200
            emit(self.request.record())
            return False
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            return False
        outcome, status = classify(exc)
        self.request.status = status
        emit(self.request.record(outcome, f"{type(exc).__name__}: {exc}"))
        return True


_probe = None


async def items():
    """The work items, as llmbench writes them; ends when llmbench closes stdin.

    Iterating it first tells llmbench the program is ready (``{"type": "ready"}``) and
    starts the lag heartbeat: set-up done before (imports, building a client) is not
    counted against the first items, nor as loop lag."""
    global _probe
    emit({"type": "ready"})
    _probe = asyncio.create_task(heartbeat())
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_ITEM_BYTES)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        readline = reader.readline
    else:  # a file (trying a client by hand: `python gather.py < items.jsonl`)
        readline = lambda: asyncio.to_thread(sys.stdin.buffer.readline)  # noqa: E731
    while line := await readline():
        fields = json.loads(line)
        yield Item(**{f.name: fields[f.name] for f in dataclasses.fields(Item)})


async def heartbeat():
    """Measures the loop's lag: asks to wake every HEARTBEAT_NS on a fixed schedule and
    records how late each wake-up came (one sample per period, as llmbench's probe)."""
    due = time.monotonic_ns() + HEARTBEAT_NS
    lags, flushed = [], time.monotonic_ns()
    try:
        while True:
            await asyncio.sleep(max(0, due - time.monotonic_ns()) / 1e9)
            now = time.monotonic_ns()
            while due <= now:
                lags.append(now - due)
                due += HEARTBEAT_NS
            if now - flushed >= LAG_FLUSH_NS or len(lags) >= LAG_BATCH:
                emit({"type": "lag", "lag_ns": lags})
                lags, flushed = [], now
    finally:
        if lags:
            emit({"type": "lag", "lag_ns": lags})


async def _main(main):
    try:
        await main(Settings.from_env(), items())
    finally:
        if _probe is not None:
            _probe.cancel()
            await asyncio.gather(_probe, return_exceptions=True)


def run(main, argv=sys.argv):
    """Runs ``main(settings, items)`` with the lag heartbeat beside it, on uvloop when
    ``--uvloop`` is among the arguments, else on asyncio's own loop."""
    if "--uvloop" in argv:
        import uvloop

        factory = uvloop.new_event_loop
    else:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_main(main))
