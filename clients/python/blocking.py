"""A mistake: a blocking call on the event loop. The TaskGroup pool of taskgroup.py, but
after each response a synchronous call (`time.sleep(0.02)`, standing for a sync HTTP
client, a database driver, a file write) freezes the loop and every other stream on it."""

import time

import llmbench_client as lb
import sdk
import taskgroup

BLOCK_S = 0.02


async def main(settings, items):
    call = sdk.caller(settings)

    async def call_then_block(item):
        await call(item)
        time.sleep(BLOCK_S)

    await taskgroup.pool(items, settings.limit or 1, call_then_block)


lb.run(main)
