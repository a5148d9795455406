"""TaskGroup pool: `limit` workers in an `asyncio.TaskGroup`, each taking the next item
from a queue as its last call ends."""

import asyncio

import llmbench_client as lb
import sdk


async def pool(items, workers, handle):
    """Runs `await handle(item)` for every item, `workers` at a time."""
    queue = asyncio.Queue()

    async def worker():
        while (item := await queue.get()) is not None:
            await handle(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
        async for item in items:
            queue.put_nowait(item)
        for _ in range(workers):
            queue.put_nowait(None)


async def main(settings, items):
    await pool(items, settings.limit or 1, sdk.caller(settings))


if __name__ == "__main__":
    lb.run(main)
