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

import httpx as plain_httpx  # httpx itself, which applications call directly

try:  # the HTTP client the pinned openai SDK is built on
    import httpx2 as httpx
except ImportError:  # older SDKs use httpx itself
    import httpx

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


def spend_the_bucket(call, refusal, limit=60):
    """Calls until the 60 RPM bucket refuses, and returns the refusal: after `limit`
    calls at the soonest, a few more on a slow machine (it refills one a second)."""
    for made in range(4 * limit):
        try:
            call()
        except refusal as refused:
            assert made >= limit, f"refused after {made} calls"
            return refused
    raise AssertionError(f"{4 * limit} calls were never refused")


def rate_limited():
    """How many requests the mock has refused for a rate limit so far, any key."""
    metrics = httpx.get(f"{URL}/metrics").text.splitlines()
    # One series per dimension that refused (requests, tokens, the quota).
    counts = [l.split()[-1] for l in metrics if l.startswith("llmbench_mock_rate_limited_total{")]
    return sum(int(float(c)) for c in counts)


def refused_then_waited_out(sdk, call, refusal):
    """Spends a fresh key's bucket, then calls on that key with retries; returns the
    refusal, the retried call's result and how long it took. The bucket refills one
    request a second, so the spending may end just before a refill, and the call then
    goes through at once, untried: that round is started again with another key."""
    for _ in range(3):
        api_key = key()
        refused = spend_the_bucket(lambda: call(sdk(api_key=api_key)), refusal)
        before = rate_limited()
        started = time.monotonic()
        result = call(sdk(max_retries=2, api_key=api_key))
        if rate_limited() > before:
            return refused, result, time.monotonic() - started
    raise AssertionError("in three rounds the bucket refilled before the call")


def test_openai_rate_limit_raises_and_retries_wait_it_out():
    call = lambda c: c.chat.completions.create(  # noqa: E731
        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=1
    )
    refused, r, took = refused_then_waited_out(oai, call, openai.RateLimitError)
    assert refused.response.headers["retry-after"] == "1"
    assert r.choices[0].message.content
    assert took >= 0.5, "the SDK waited for retry-after"


def test_anthropic_rate_limit_raises_and_retries_wait_it_out():
    call = lambda c: c.messages.create(  # noqa: E731
        model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
    )
    refused, m, took = refused_then_waited_out(claude, call, anthropic.RateLimitError)
    assert refused.response.headers["retry-after"] == "1"
    assert m.content[0].text
    assert took >= 0.5, "the SDK waited for retry-after"


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


def test_openai_responses_whole_usage_matches_the_text():
    r = oai().responses.create(model="gpt-test", input=PROMPT, max_output_tokens=7)
    assert r.object == "response"
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert words(r.output_text) == r.usage.output_tokens == 7
    assert r.usage.input_tokens == words(PROMPT)
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_openai_responses_stream_events_in_order_with_usage():
    stream = oai().responses.create(
        model="gpt-test", input=[{"role": "user", "content": PROMPT}], instructions="be brief",
        max_output_tokens=9, stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert words(text) == final.usage.output_tokens == 9
    assert final.output_text == text == events[-4].text
    assert final.usage.input_tokens == words(PROMPT) + 2


def test_openai_responses_stream_helper_completes():
    with oai().responses.stream(model="gpt-test", input="say a little") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == text and words(text) == final.usage.output_tokens


def cacheable(words_count):
    """A prompt of its own, long enough to be cached: the prefix cache is shared."""
    return " ".join([uuid.uuid4().hex] + ["context"] * (words_count - 1))


def test_openai_prompt_caching_usage_fields():
    prompt = cacheable(300)
    call = lambda: oai().chat.completions.create(  # noqa: E731
        model="m", messages=[{"role": "user", "content": prompt}], max_tokens=1
    )
    assert call().usage.prompt_tokens_details.cached_tokens == 0
    again = call().usage
    assert again.prompt_tokens == 300
    assert again.prompt_tokens_details.cached_tokens == 256  # whole 128-token blocks
    r = oai().responses.create(model="m", input=prompt, max_output_tokens=1)
    assert r.usage.input_tokens_details.cached_tokens == 256


def test_anthropic_prompt_caching_usage_fields():
    system = [{"type": "text", "text": cacheable(200), "cache_control": {"type": "ephemeral"}}]
    call = lambda: claude().messages.create(  # noqa: E731
        model="claude-test", max_tokens=1, system=system,
        messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
    )
    written = call().usage
    assert (written.cache_creation_input_tokens, written.cache_read_input_tokens) == (200, 0)
    assert written.input_tokens == words(PROMPT)
    read = call().usage
    assert (read.cache_creation_input_tokens, read.cache_read_input_tokens) == (0, 200)
    assert read.input_tokens == words(PROMPT)


@pytest.mark.parametrize("module", [plain_httpx, httpx], ids=["httpx", "sdk-http-client"])
def test_http2_with_prior_knowledge_through_httpx_and_the_sdk(module):
    # http1=False: HTTP/2 with prior knowledge (h2c) on a plain http:// URL.
    with module.Client(http1=False, http2=True) as h2:
        r = h2.post(
            f"{URL}/v1/chat/completions",
            headers={"authorization": f"Bearer {key()}"},
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        )
        assert r.http_version == "HTTP/2" and r.status_code == 200
        assert r.json()["usage"]["completion_tokens"] == 3
        if module is not httpx:
            return  # the SDK takes only the client it is built on
        client = openai.OpenAI(base_url=f"{URL}/v1", api_key=key(), max_retries=0, http_client=h2)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
        assert sum(1 for c in stream for ch in c.choices if ch.delta.content) == 4
