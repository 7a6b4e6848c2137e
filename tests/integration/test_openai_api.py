"""The OpenAI API end to end through real Ray Serve deployments and real vLLM engines,
with the real `openai` client."""

from __future__ import annotations

import time

import httpx
import openai
import pytest


@pytest.fixture(scope="module")
def oai(platform):
    return openai.OpenAI(base_url=f"{platform.url}/v1", api_key="unused", max_retries=0,
                         timeout=120)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_models_endpoint(oai):
    ids = [m.id for m in oai.models.list().data]
    assert ids[:4] == ["auto", "7b", "33b", "236b"]
    assert {"smol-7b", "smol-7b-int8", "smol-33b", "smol-236b"} <= set(ids)


def test_chat_non_stream_real_answer(oai):
    raw = oai.chat.completions.with_raw_response.create(
        model="auto", messages=ask("What is the capital of France?"), temperature=0, max_tokens=24)
    reply = raw.parse()
    assert "Paris" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert raw.headers["x-tierserve-tier"] == "7b"
    assert raw.headers["x-tierserve-deployment"] == "smol-7b"


def test_chat_stream_with_usage(oai):
    stream = oai.chat.completions.create(
        model="7b", messages=ask("What is the capital of France?"), temperature=0, max_tokens=24,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)


def test_routes_to_different_tiers(platform):
    cases = {
        "What is the capital of France?": "7b",
        "Write a Python function that merges two sorted lists and explain it.": "33b",
        "Prove step by step that the square root of 2 is irrational.": "236b",
    }
    for text, tier in cases.items():
        r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=120, json={
            "model": "auto", "messages": ask(text), "max_tokens": 4})
        assert r.status_code == 200, r.text
        assert r.headers["x-tierserve-tier"] == tier, (text, r.headers)
        assert r.json()["model"] == f"smol-{tier}"


def test_pinned_variant_and_latency_critical_int8(platform):
    r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=120,
                   headers={"x-tierserve-latency": "critical"},
                   json={"model": "auto", "messages": ask("What is the capital of France?"),
                         "max_tokens": 16, "temperature": 0})
    assert r.headers["x-tierserve-deployment"] == "smol-7b-int8"
    assert "Paris" in r.json()["choices"][0]["message"]["content"]
    r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=120,
                   json={"model": "smol-236b", "messages": ask("hi"), "max_tokens": 2})
    assert r.headers["x-tierserve-deployment"] == "smol-236b"
    assert r.headers["x-tierserve-route-reason"] == "pinned:variant"


def test_completions_endpoint(oai):
    reply = oai.completions.create(model="7b", prompt="The capital of France is", max_tokens=5,
                                   temperature=0)
    assert reply.choices[0].text.strip()
    assert reply.usage.completion_tokens == 5


def test_bad_requests(oai, platform):
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="gpt-5", messages=ask("x"))
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="auto", messages=ask("x"), temperature=5)
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="7b", messages=ask("word " * 1500))
    assert err.value.body["code"] == "context_length_exceeded"
    r = httpx.post(f"{platform.url}/v1/chat/completions", content=b"{oops", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(f"{platform.url}/v1/chat/completions", json={"model": "auto"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_stream_error_before_first_token_is_http_error(platform):
    r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=60, json={
        "model": "7b", "stream": True, "messages": ask("word " * 1500)})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_client_disconnect_aborts_engine_request(platform):
    before = platform.stats("smol-33b")
    body = {"model": "smol-33b", "stream": True, "max_tokens": 900, "ignore_eos": True,
            "messages": ask("Count slowly to one thousand.")}
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", f"{platform.url}/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any(line.startswith("data: ") for line in got)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = platform.stats("smol-33b")
        if stats.aborted_total > before.aborted_total and stats.extra["inflight"] == 0:
            break
        time.sleep(0.5)
    assert stats.aborted_total == before.aborted_total + 1
    assert stats.extra["inflight"] == 0
    # The engine is free again and answers.
    r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=60, json={
        "model": "smol-33b", "messages": ask("hi"), "max_tokens": 3})
    assert r.status_code == 200


def test_concurrent_streams_all_complete(platform):
    import concurrent.futures as cf

    def one(i: int) -> int:
        r = httpx.post(f"{platform.url}/v1/chat/completions", timeout=120, json={
            "model": "7b", "max_tokens": 8, "ignore_eos": True,
            "messages": ask(f"Say the number {i}.")})
        assert r.status_code == 200, r.text
        return r.json()["usage"]["completion_tokens"]

    with cf.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(16))) == [8] * 16
