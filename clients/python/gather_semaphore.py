"""gather + Semaphore: a task per item, each holding an `asyncio.Semaphore(limit)` slot
while it calls; at most `limit` in flight, every task created up front."""

import asyncio

import llmbench_client as lb
import sdk


async def main(settings, items):
    call = sdk.caller(settings)
    slots = asyncio.Semaphore(settings.limit or 1)

    async def bounded(item):
        async with slots:
            await call(item)

    tasks = [asyncio.create_task(bounded(item)) async for item in items]
    await asyncio.gather(*tasks)


lb.run(main)
