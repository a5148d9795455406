"""The official OpenAI and Anthropic Python SDKs against `llmbench mock`.

Run by scripts/sdk-conformance.sh, which installs the SDKs into a virtual environment,
starts the mock on a free loopback port and passes its address in LLMBENCH_MOCK_URL.
"""

import os
import time
import uuid

import anthropic
import openai
import pytest

URL = os.environ["LLMBENCH_MOCK_URL"]
PROMPT = "name three colours please"


def key():
    """A fresh API key: the mock meters each key with its own buckets."""
    return f"sk-test-{uuid.uuid4().hex}"


def oai(max_retries=0, api_key=None):
    return openai.OpenAI(base_url=f"{URL}/v1", api_key=api_key or key(), max_retries=max_retries)


def claude(max_retries=0, api_key=None):
    return anthropic.Anthropic(base_url=URL, api_key=api_key or key(), max_retries=max_retries)


def words(text):
    return len(text.split())


def test_openai_whole_completion_usage_matches_the_text():
    r = oai().chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}], max_tokens=7
    )
    text = r.choices[0].message.content
    assert r.object == "chat.completion"
    assert r.choices[0].finish_reason == "length"
    assert words(text) == r.usage.completion_tokens == 7
    assert r.usage.prompt_tokens == words(PROMPT)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_stream_with_usage_matches_the_text():
    stream = oai().chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": PROMPT}],
        max_completion_tokens=9,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert finish == "length"
    assert usage is not None and words(text) == usage.completion_tokens == 9


def test_openai_legacy_completion_usage_matches_the_text():
    r = oai().completions.create(model="gpt-test-instruct", prompt=PROMPT, max_tokens=5)
    assert r.object == "text_completion"
    assert r.choices[0].finish_reason == "length"
    assert words(r.choices[0].text) == r.usage.completion_tokens == 5
    assert r.usage.prompt_tokens == words(PROMPT)


def test_openai_legacy_stream_with_usage_matches_the_text():
    stream = oai().completions.create(
        model="gpt-test-instruct",
        prompt=PROMPT,
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    assert finish == "length"
    assert usage is not None and words(text) == usage.completion_tokens == 6


def test_anthropic_whole_message_usage_matches_the_text():
    m = claude().messages.create(
        model="claude-test", max_tokens=6, messages=[{"role": "user", "content": PROMPT}]
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.stop_reason == "max_tokens"
    assert words(m.content[0].text) == m.usage.output_tokens == 6
    assert m.usage.input_tokens == words(PROMPT)


def test_anthropic_stream_usage_matches_the_text():
    with claude().messages.stream(
        model="claude-test", max_tokens=8, system="be brief", messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert words(text) == final.usage.output_tokens == 8
    assert final.usage.input_tokens == words(PROMPT) + 2
    assert final.stop_reason == "max_tokens"


def spend_the_bucket(call, limit=60):
    """Makes `limit` calls: a 60 RPM bucket then holds less than one request."""
    for _ in range(limit):
        call()


def test_openai_rate_limit_raises_and_retries_wait_it_out():
    api_key = key()
    client = oai(api_key=api_key)
    call = lambda c: c.chat.completions.create(  # noqa: E731
        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=1
    )
    spend_the_bucket(lambda: call(client))
    with pytest.raises(openai.RateLimitError) as refused:
        call(client)
    assert refused.value.response.headers["retry-after"] == "1"
    started = time.monotonic()
    r = call(oai(max_retries=2, api_key=api_key))
    assert r.choices[0].message.content
    assert time.monotonic() - started >= 0.5, "the SDK waited for retry-after"


def test_anthropic_rate_limit_raises_and_retries_wait_it_out():
    api_key = key()
    call = lambda c: c.messages.create(  # noqa: E731
        model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
    )
    client = claude(api_key=api_key)
    spend_the_bucket(lambda: call(client))
    with pytest.raises(anthropic.RateLimitError) as refused:
        call(client)
    assert refused.value.response.headers["retry-after"] == "1"
    started = time.monotonic()
    assert call(claude(max_retries=2, api_key=api_key)).content[0].text
    assert time.monotonic() - started >= 0.5


def test_anthropic_529_is_an_overloaded_error():
    with pytest.raises(anthropic.OverloadedError):
        claude().messages.create(
            model="m",
            max_tokens=1,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-llmbench-fault": "529"},
        )


def test_openai_mid_stream_error_event_raises():
    stream = oai().chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        stream=True,
        extra_headers={"x-llmbench-fault": "error-event"},
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_anthropic_mid_stream_error_event_raises():
    with pytest.raises(anthropic.APIError):
        with claude().messages.stream(
            model="m",
            max_tokens=6,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-llmbench-fault": "error-event"},
        ) as stream:
            for _ in stream.text_stream:
                pass


def test_models_are_listed_for_both_sdks():
    assert [m.id for m in oai().models.list()] == ["llmbench-mock"]
    assert [m.id for m in claude().models.list()] == ["llmbench-mock"]
