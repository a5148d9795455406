"""One streamed call with the official SDK the target's API calls for: ``AsyncOpenAI``
(chat, completions, responses) or ``AsyncAnthropic`` (messages), built with
``max_retries=0``: llmbench's ``[retry]`` does not reach into a program, and retries
inside the SDK would break the counts. Shared by the reference clients."""

import llmbench_client as lb


def caller(settings):
    """``async def call(item)`` for the target, writing one record per item."""
    if settings.api == "messages":
        import anthropic

        client = anthropic.AsyncAnthropic(
            base_url=settings.base_url, api_key=settings.api_key, max_retries=0, timeout=settings.timeout_s
        )
        client.messages  # the SDK loads its resources lazily: load them now, not on the first call
        return lambda item: _messages(client, settings.model, item)
    import openai

    client = openai.AsyncOpenAI(
        base_url=settings.base_url + "/v1", api_key=settings.api_key, max_retries=0, timeout=settings.timeout_s
    )
    calls = {"chat": _chat, "completions": _completions, "responses": _responses}
    call = calls[settings.api]
    getattr(client, {"chat": "chat", "completions": "completions", "responses": "responses"}[settings.api])
    return lambda item: call(client, settings.model, item)


async def _chat(client, model, item):
    async with lb.measure(item) as request:
        messages = [{"role": "user", "content": item.prompt}]
        if not item.stream:
            r = await client.chat.completions.create(model=model, messages=messages, max_tokens=item.max_tokens)
            request.output_tokens = r.usage.completion_tokens if r.usage else None
            return
        stream = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=item.max_tokens, **STREAMED
        )
        await _read_openai(request, stream, lambda choice: choice.delta.content)


async def _completions(client, model, item):
    async with lb.measure(item) as request:
        stream = await client.completions.create(
            model=model, prompt=item.prompt, max_tokens=item.max_tokens, **STREAMED
        )
        await _read_openai(request, stream, lambda choice: choice.text)


STREAMED = {"stream": True, "stream_options": {"include_usage": True}}


async def _read_openai(request, stream, text_of):
    """Reads a Chat Completions or Completions stream: a chunk for each non-empty text,
    the token count from the closing usage."""
    async for chunk in stream:
        if chunk.usage is not None:
            request.output_tokens = chunk.usage.completion_tokens
        if any(text_of(choice) for choice in chunk.choices):
            request.chunk()


async def _responses(client, model, item):
    async with lb.measure(item) as request:
        stream = await client.responses.create(
            model=model, input=item.prompt, max_output_tokens=item.max_tokens, stream=True
        )
        async for event in stream:
            if event.type == "response.output_text.delta" and event.delta:
                request.chunk()
            elif event.type == "response.completed" and event.response.usage:
                request.output_tokens = event.response.usage.output_tokens


async def _messages(client, model, item):
    async with lb.measure(item) as request:
        stream = await client.messages.create(
            model=model,
            max_tokens=item.max_tokens,
            messages=[{"role": "user", "content": item.prompt}],
            stream=True,
        )
        async for event in stream:
            if event.type == "content_block_delta" and getattr(event.delta, "text", ""):
                request.chunk()
            elif event.type == "message_delta":
                request.output_tokens = event.usage.output_tokens
