"""Conversations through the HTTP API (FakeEngine, in-memory store)."""

from __future__ import annotations

import json

from tierserve.context.store import ContextUnavailable


def chat(content, cid="conv-1", **extra):
    return {"model": "33b", "conversation_id": cid, "messages": [{"role": "user", "content": content}],
            **extra}


async def test_turns_are_stored_and_prepended(client):
    r1 = await client.post("/v1/chat/completions", json=chat("first question"))
    assert r1.headers["x-tierserve-conversation"] == "conv-1"
    assert r1.headers["x-tierserve-context"] == "ok"
    r2 = await client.post("/v1/chat/completions", json=chat("second"))
    # FakeEngine counts every prompt word: the stored turns were prepended.
    assert r2.json()["usage"]["prompt_tokens"] > r1.json()["usage"]["prompt_tokens"] + 4
    body = (await client.get("/v1/conversations/conv-1")).json()
    assert [t["role"] for t in body["turns"]] == ["user", "assistant", "user", "assistant"]
    assert body["turns"][2]["content"] == "second"
    assert [t["seq"] for t in body["turns"]] == [1, 2, 3, 4]


async def test_header_identifies_the_conversation_too(client):
    msg = {"model": "33b", "messages": [{"role": "user", "content": "hi"}]}
    await client.post("/v1/chat/completions", json=msg, headers={"x-tierserve-conversation": "h1"})
    assert len((await client.get("/v1/conversations/h1")).json()["turns"]) == 2


async def test_streamed_answer_is_stored_only_when_complete(client):
    r = await client.post("/v1/chat/completions", json=chat("streamed words here", cid="s1", stream=True))
    assert r.status_code == 200
    turns = (await client.get("/v1/conversations/s1")).json()["turns"]
    assert turns[1]["content"] == "[medium-fp32] streamed words here"


async def test_window_drops_old_turns_and_says_so(client):
    for i in range(12):  # FakeEngine window is 64 "tokens"
        r = await client.post("/v1/chat/completions", json=chat(f"turn {i} " + "w " * 5, cid="long", max_tokens=4))
        assert r.status_code == 200, r.text
    assert int(r.headers["x-tierserve-context-dropped-turns"]) > 0
    assert r.json()["usage"]["prompt_tokens"] + 4 <= 64


async def test_system_prompt_is_kept_from_storage(client, tiers):
    await client.post("/v1/chat/completions", json={
        "model": "33b", "conversation_id": "sys", "messages": [
            {"role": "system", "content": "SYSTEMPROMPT"}, {"role": "user", "content": "hi"}]})
    stored = (await client.get("/v1/conversations/sys")).json()
    assert stored["system"] == "SYSTEMPROMPT"
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant"]


async def test_other_key_cannot_read_or_delete(client):
    await client.post("/v1/chat/completions", json=chat("private", cid="p1"),
                      headers={"authorization": "Bearer alice"})
    assert (await client.get("/v1/conversations/p1", headers={"authorization": "Bearer bob"})).status_code == 404
    assert (await client.delete("/v1/conversations/p1", headers={"authorization": "Bearer bob"})).status_code == 404
    assert (await client.get("/v1/conversations/p1", headers={"authorization": "Bearer alice"})).status_code == 200
    r = await client.delete("/v1/conversations/p1", headers={"authorization": "Bearer alice"})
    assert r.json()["deleted"] is True
    assert (await client.get("/v1/conversations/p1", headers={"authorization": "Bearer alice"})).status_code == 404


async def test_bad_conversation_id(client):
    r = await client.post("/v1/chat/completions", json=chat("x", cid="bad id/with spaces"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "conversation_id"


async def test_store_down_serves_statelessly(client, conversations):
    class Down:
        name = "down"

        async def load(self, key):
            raise ContextUnavailable("down")

        async def append(self, key, turns, system=None):
            raise ContextUnavailable("down")

    conversations.store = Down()
    r = await client.post("/v1/chat/completions", json=chat("still works"))
    assert r.status_code == 200
    assert r.headers["x-tierserve-context"] == "unavailable"
    assert "context store unavailable" in r.headers["warning"]
    r = await client.post("/v1/chat/completions", json=chat("stream too", stream=True))
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    assert conversations.degraded_total >= 3
