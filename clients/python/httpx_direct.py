"""TaskGroup pool calling the API with httpx directly (no SDK): one `httpx.AsyncClient`
pooling `limit` connections, the SSE stream read line by line. Chat Completions only."""

import json

import httpx
import llmbench_client as lb
import taskgroup


async def main(settings, items):
    workers = settings.limit or 1
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    headers = {"authorization": f"Bearer {settings.api_key}"}
    async with httpx.AsyncClient(
        base_url=settings.base_url, headers=headers, limits=limits, timeout=settings.timeout_s
    ) as client:

        async def call(item):
            async with lb.measure(item) as request:
                body = {
                    "model": settings.model,
                    "messages": [{"role": "user", "content": item.prompt}],
                    "max_tokens": item.max_tokens,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    request.status = response.status_code
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if not line.startswith("data:") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line[5:])
                        if chunk.get("usage"):
                            request.output_tokens = chunk["usage"]["completion_tokens"]
                        if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                            request.chunk()

        await taskgroup.pool(items, workers, call)


lb.run(main)
