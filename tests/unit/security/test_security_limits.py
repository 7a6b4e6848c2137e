"""Request limits (each a clear 4xx) and the admin endpoints."""

from __future__ import annotations

import httpx
import pytest

from tierserve.config import parse_config
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.security.admin_api import redacted_config

from tests.unit.conftest import small_config


def chunks(total: int, size: int = 64 << 10):
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield b" " * step


def body_of(total: int) -> bytes:
    payload = b'{"model": "7b", "messages": [{"role": "user", "content": "hi"}]}'
    return payload + b" " * (total - len(payload))


async def test_chunked_body_over_the_limit_is_413(client):
    async def stream():
        yield body_of(100)
        for piece in chunks(5 << 20):
            yield piece

    r = await client.post("/v1/chat/completions", content=stream(),
                          headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_chunked_body_under_the_limit_is_served(client):
    async def stream():
        data = body_of(300 << 10)
        for i in range(0, len(data), 50 << 10):
            yield data[i:i + (50 << 10)]

    r = await client.post("/v1/chat/completions", content=stream(),
                          headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.fixture
async def bounded(tiers, conversations):
    config = parse_config(small_config(router={"max_completion_tokens": 50}))
    app = create_app(RouterService(config, LocalTierClient(tiers), conversations))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as c:
        yield c


@pytest.mark.parametrize("path, extra, param", [
    ("/v1/chat/completions", {"max_tokens": 51}, "max_tokens"),
    ("/v1/chat/completions", {"max_completion_tokens": 51}, "max_completion_tokens"),
    ("/v1/chat/completions", {"max_tokens": 10**9, "stream": True}, "max_tokens"),
    ("/v1/completions", {"max_tokens": 51}, "max_tokens"),
])
async def test_max_tokens_has_an_upper_bound(bounded, path, extra, param):
    body = ({"prompt": "hi"} if "chat" not in path else
            {"messages": [{"role": "user", "content": "hi"}]})
    r = await bounded.post(path, json={"model": "7b", **body, **extra})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["code"] == "invalid_value"
    assert "at most 50" in err["message"]
    ok = await bounded.post(path, json={"model": "7b", **body, "max_tokens": 5})
    assert ok.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_prompt_over_the_window_is_400_on_completions_too(client, stream):
    r = await client.post("/v1/completions", json={
        "model": "7b", "prompt": "w " * 100, "stream": stream})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


async def test_prompt_over_the_window_is_400_in_a_conversation(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "7b", "conversation_id": "big", "stream": True,
        "messages": [{"role": "user", "content": "w " * 100}]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


async def test_conversation_admin_reaches_any_key(secure_client, keys):
    ask = {"model": "33b", "conversation_id": "c1",
           "messages": [{"role": "user", "content": "remember me"}]}
    assert (await secure_client.post("/v1/chat/completions", json=ask,
                                     headers=keys.auth("inference"))).status_code == 200
    # Another key sees nothing under the same id: conversations are scoped to the key.
    r = await secure_client.get("/v1/conversations/c1", headers=keys.auth("other"))
    assert r.status_code == 404
    r = await secure_client.get("/admin/conversations/app/c1", headers=keys.auth("admin"))
    assert r.status_code == 200 and r.json()["key_id"] == "app"
    assert [t["role"] for t in r.json()["turns"]] == ["user", "assistant"]
    r = await secure_client.delete("/admin/conversations/app/c1", headers=keys.auth("admin"))
    assert r.json()["deleted"] is True
    r = await secure_client.get("/v1/conversations/c1", headers=keys.auth("inference"))
    assert r.status_code == 404
    r = await secure_client.get("/admin/conversations/nobody/c1", headers=keys.auth("admin"))
    assert r.status_code == 404 and "nobody" in r.json()["error"]["message"]
    r = await secure_client.get("/admin/conversations/app/bad%20id", headers=keys.auth("admin"))
    assert r.status_code == 400


async def test_admin_views_hide_digests(secure_client, keys, secured):
    listed = (await secure_client.get("/admin/keys", headers=keys.auth("admin"))).json()
    assert {k["id"] for k in listed["data"]} == {"ops", "app", "other", "tight"}
    config = (await secure_client.get("/admin/config", headers=keys.auth("admin"))).text
    for entry in secured.security.api_keys:
        assert entry.sha256 not in config and entry.sha256 not in str(listed)


def test_redacted_config_hides_redis_passwords():
    config = parse_config(small_config(context={"redis_url": "redis://user:s3cret@h:6379/0"}))
    assert redacted_config(config)["context"]["redis_url"] == "redis://user:***@h:6379/0"
