"""Conversations through the real stack: Ray Serve router + vLLM engines + real Redis."""

from __future__ import annotations

import time

import httpx


def turn(platform, cid: str, text: str, **extra) -> httpx.Response:
    return httpx.post(f"{platform.url}/v1/chat/completions", timeout=120, json={
        "model": "7b", "conversation_id": cid, "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": text}], **extra})


def test_conversation_continues_without_resending(platform):
    r1 = turn(platform, "real-1", "My name is Ada. Remember it.")
    r2 = turn(platform, "real-1", "What is my name?")
    assert r1.status_code == r2.status_code == 200
    assert r2.json()["usage"]["prompt_tokens"] > r1.json()["usage"]["prompt_tokens"] + 10
    assert r2.headers["x-tierserve-context-dropped-turns"] == "0"
    stored = httpx.get(f"{platform.url}/v1/conversations/real-1", timeout=30).json()
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant"] * 2
    assert stored["turns"][3]["content"] == r2.json()["choices"][0]["message"]["content"]
    assert httpx.delete(f"{platform.url}/v1/conversations/real-1", timeout=30).json()["deleted"]
    assert httpx.get(f"{platform.url}/v1/conversations/real-1", timeout=30).status_code == 404


def test_long_conversation_is_trimmed_to_the_model_window(platform):
    filler = "This sentence is padding for the sliding window test. " * 20
    for _ in range(8):  # ~240 tokens per turn against a 1,024-token window
        r = turn(platform, "real-long", filler, max_tokens=4)
        assert r.status_code == 200, r.text
    assert int(r.headers["x-tierserve-context-dropped-turns"]) > 0
    assert r.json()["usage"]["prompt_tokens"] + 4 <= 1024


def test_redis_down_serves_statelessly_then_recovers(platform):
    assert turn(platform, "real-2", "hello").status_code == 200
    platform.redis.kill()
    try:
        r = turn(platform, "real-2", "are you there?", stream=True)
        assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
        assert r.headers["x-tierserve-context"] == "unavailable"
        assert "context store unavailable" in r.headers["warning"]
    finally:
        platform.redis.start()
    time.sleep(1.0)  # the store's breaker retries after retry_after_failure_s
    r = turn(platform, "real-3", "back again")
    assert r.status_code == 200 and r.headers["x-tierserve-context"] == "ok"
    stored = httpx.get(f"{platform.url}/v1/conversations/real-3", timeout=30).json()
    assert len(stored["turns"]) == 2
