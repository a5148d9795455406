"""serial: one call after another, each awaited before the next (`for item: await call(item)`)."""

import llmbench_client as lb
import sdk


async def main(settings, items):
    call = sdk.caller(settings)
    async for item in items:
        await call(item)


lb.run(main)
