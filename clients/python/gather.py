"""gather, unbounded: a task per item the moment it arrives, all awaited with
`asyncio.gather` (nothing caps the calls in flight)."""

import asyncio

import llmbench_client as lb
import sdk


async def main(settings, items):
    call = sdk.caller(settings)
    tasks = [asyncio.create_task(call(item)) async for item in items]
    await asyncio.gather(*tasks)


lb.run(main)
