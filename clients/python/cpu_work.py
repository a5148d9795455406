"""A mistake and its fix: CPU work after each response (20 ms of hashing, standing for
tokenising or parsing) on the event loop, or with `--to-thread` in `asyncio.to_thread`,
which lets the loop run between the interpreter's switches (the GIL still holds one
thread of Python at a time). The TaskGroup pool of taskgroup.py otherwise."""

import asyncio
import hashlib
import sys
import time

import llmbench_client as lb
import sdk
import taskgroup

WORK_S = 0.02


def cpu_work():
    until = time.thread_time() + WORK_S
    block = b"x" * 4096
    while time.thread_time() < until:
        for _ in range(64):
            block = hashlib.sha256(block).digest() * 128


async def main(settings, items):
    call = sdk.caller(settings)
    to_thread = "--to-thread" in sys.argv

    async def call_then_work(item):
        await call(item)
        if to_thread:
            await asyncio.to_thread(cpu_work)
        else:
            cpu_work()

    await taskgroup.pool(items, settings.limit or 1, call_then_work)


lb.run(main)
