"""The OpenAI surface through the real FastAPI app, tiers served by the FakeEngine."""

from __future__ import annotations

import json

import pytest


def _events(text: str) -> list:
    frames = [f[len("data: "):] for f in text.split("\n\n") if f.startswith("data: ")]
    return [f if f == "[DONE]" else json.loads(f) for f in frames]


async def test_models_lists_auto_tiers_and_variants(client):
    body = (await client.get("/v1/models")).json()
    ids = [m["id"] for m in body["data"]]
    assert ids[:4] == ["auto", "7b", "33b", "236b"]
    assert {"small-fp32", "small-int8", "medium-fp32", "large-bf16"} <= set(ids)


async def test_chat_non_stream_has_usage_and_route_headers(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("[small-fp32]")
    assert body["usage"]["completion_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert r.headers["x-tierserve-tier"] == "7b"
    assert r.headers["x-tierserve-deployment"] == "small-fp32"
    assert r.headers["x-tierserve-route-reason"].startswith("rules:")


async def test_chat_stream_frames_and_usage(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "33b", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hello there"}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-2])
    assert text == "[medium-fp32] hello there"
    assert events[-2]["usage"]["completion_tokens"] == 3
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


async def test_pinned_variant_and_tier(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "large-bf16", "messages": [{"role": "user", "content": "hi"}]})
    assert r.headers["x-tierserve-deployment"] == "large-bf16"
    assert r.headers["x-tierserve-route-reason"] == "pinned:variant"
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-tierserve-latency": "critical"})
    assert r.headers["x-tierserve-deployment"] == "small-int8"


async def test_completions_endpoint(client):
    r = await client.post("/v1/completions", json={"model": "7b", "prompt": "one two", "max_tokens": 2})
    body = r.json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "[small-fp32] one"
    assert body["choices"][0]["finish_reason"] == "length"


async def test_max_tokens_length_finish(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "max_tokens": 1, "messages": [{"role": "user", "content": "a b c"}]})
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 1


def _assert_openai_error(r, status, param=None, code=None, etype="invalid_request_error"):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == etype
    assert err["message"]
    assert "Traceback" not in err["message"]
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code


@pytest.mark.parametrize(
    "payload, status, param",
    [
        ({"model": "auto"}, 400, "messages"),
        ({"model": "auto", "messages": []}, 400, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "temperature"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "top_p": 0}, 400, "top_p"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n"),
        ({"model": "auto", "messages": [{"role": "system", "content": "x"}]}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ],
)
async def test_bad_requests_get_openai_errors(client, payload, status, param):
    r = await client.post("/v1/chat/completions", json=payload)
    _assert_openai_error(r, status, param)


async def test_unknown_model_is_404(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    _assert_openai_error(r, 404, "model", "model_not_found")
    assert "auto" in r.json()["error"]["message"]


async def test_malformed_json_is_400(client):
    r = await client.post("/v1/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    _assert_openai_error(r, 400)
    r = await client.post("/v1/chat/completions", json=[1, 2])
    _assert_openai_error(r, 400)


async def test_prompt_longer_than_window_is_400(client):
    words = " ".join(["w"] * 100)
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "messages": [{"role": "user", "content": words}]})
    _assert_openai_error(r, 400, "messages", "context_length_exceeded")
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "stream": True, "messages": [{"role": "user", "content": words}]})
    _assert_openai_error(r, 400, "messages", "context_length_exceeded")


async def test_max_tokens_beyond_window_is_400(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]})
    _assert_openai_error(r, 400, "messages", "context_length_exceeded")


async def test_unknown_route_and_method(client):
    _assert_openai_error(await client.get("/v1/nope"), 404, etype="not_found_error")
    _assert_openai_error(await client.get("/v1/chat/completions"), 405)


async def test_body_size_limit(client):
    big = "x" * (5 << 20)
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "messages": [{"role": "user", "content": big}]})
    _assert_openai_error(r, 413)


async def test_too_many_messages(client):
    msgs = [{"role": "user", "content": "x"}] * 600
    r = await client.post("/v1/chat/completions", json={"model": "7b", "messages": msgs})
    _assert_openai_error(r, 400, "messages")


async def test_content_parts_are_joined(client):
    r = await client.post("/v1/chat/completions", json={"model": "33b", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "alpha "}, {"type": "text", "text": "beta"}]}]})
    assert r.json()["choices"][0]["message"]["content"] == "[medium-fp32] alpha beta"


async def test_health(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
