"""Authentication, roles, rate limits and audit through the real FastAPI app."""

from __future__ import annotations

import json

import httpx
import pytest

from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.security.audit import verify_chain
from tierserve.security.gate import relative_path, required_role

from tests.unit.security.conftest import secured_config

CHAT = {"model": "7b", "messages": [{"role": "user", "content": "hello there"}]}


def assert_error(r: httpx.Response, status: int, etype: str, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == etype and err["message"] and "Traceback" not in err["message"]
    assert set(err) == {"message", "type", "param", "code"}
    if code is not None:
        assert err["code"] == code
    return err


@pytest.mark.parametrize("headers, code", [
    ({}, "missing_api_key"),
    ({"authorization": "Bearer"}, "missing_api_key"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
    ({"authorization": "Bearer ts-not-a-real-key-123456"}, "invalid_api_key"),
])
async def test_missing_or_invalid_key_is_401(secure_client, headers, code):
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                         ("GET", "/v1/conversations/c1"), ("GET", "/admin/config"),
                         ("GET", "/v1/no-such-route")):
        r = await secure_client.request(method, path, json=CHAT, headers=headers)
        assert_error(r, 401, "authentication_error", code)


async def test_401_comes_before_the_body_is_read(secure_client):
    r = await secure_client.post("/v1/chat/completions", content=b"{not json",
                                 headers={"content-type": "application/json"})
    assert_error(r, 401, "authentication_error")
    err = assert_error(await secure_client.post(
        "/v1/chat/completions", json=CHAT,
        headers={"authorization": "Bearer ts-abcdefghijklmnopqrstuvwxyz"}), 401,
        "authentication_error")
    assert "ts-ab...wxyz" in err["message"] and "klmnop" not in err["message"]


async def test_valid_keys_are_served_as_the_sdk_sends_them(secure_client, keys):
    for name in ("inference", "admin"):
        r = await secure_client.post("/v1/chat/completions", json=CHAT, headers=keys.auth(name))
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    r = await secure_client.get("/v1/models",
                                headers={"Authorization": f"bearer {keys.inference}"})
    assert r.status_code == 200


async def test_public_paths_need_no_key(secure_client):
    assert (await secure_client.get("/health")).status_code == 200
    schema = (await secure_client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "401" in schema["paths"]["/v1/chat/completions"]["post"]["responses"]


async def test_inference_key_on_admin_endpoints_is_403(secure_client, keys):
    for method, path in (("GET", "/admin/config"), ("GET", "/admin/keys"),
                         ("GET", "/admin/audit"), ("DELETE", "/admin/conversations/app/c1"),
                         ("POST", "/admin/anything-added-later")):
        r = await secure_client.request(method, path, headers=keys.auth("inference"))
        assert_error(r, 403, "permission_error", "insufficient_permissions")
    r = await secure_client.get("/admin/config", headers=keys.auth("admin"))
    assert r.status_code == 200


async def test_every_admin_call_is_audited_denials_included(secure_client, keys, secured):
    await secure_client.get("/admin/config")
    await secure_client.get("/admin/config", headers=keys.auth("inference"))
    await secure_client.get("/admin/keys", headers=keys.auth("admin"))
    await secure_client.post("/v1/chat/completions", json=CHAT, headers=keys.auth("admin"))
    path = secured.security.audit.path
    records = [json.loads(line) for line in open(path)]
    assert [(r["actor"], r["action"], r["result"]) for r in records] == [
        ("unauthenticated", "GET /admin/config", "401"),
        ("app", "GET /admin/config", "403"),
        ("ops", "GET /admin/keys", "200"),
    ]
    assert all(r["at"] > 0 and r["source"] for r in records)
    assert verify_chain(path).intact
    tail = (await secure_client.get("/admin/audit?limit=2", headers=keys.auth("admin"))).json()
    assert tail["data"] == records[-2:]  # the call itself is recorded once it has answered


async def test_requests_per_minute_is_429_with_retry_after(secure_client, keys):
    for _ in range(3):
        r = await secure_client.post("/v1/chat/completions", json=CHAT,
                                     headers=keys.auth("limited"))
        assert r.status_code == 200
    r = await secure_client.post("/v1/chat/completions", json=CHAT, headers=keys.auth("limited"))
    err = assert_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
    assert "3 requests per minute" in err["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 20
    other = await secure_client.post("/v1/chat/completions", json=CHAT, headers=keys.auth("other"))
    assert other.status_code == 200  # buckets are per key


async def test_tokens_per_minute_charges_real_usage(secure_client, keys):
    long = {"model": "7b", "stream": True, "messages": [{"role": "user", "content": "w " * 20}]}
    r = await secure_client.post("/v1/chat/completions", json=long, headers=keys.auth("limited"))
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")  # ~44 tokens > 30/min
    r = await secure_client.post("/v1/chat/completions", json=CHAT, headers=keys.auth("limited"))
    err = assert_error(r, 429, "rate_limit_error")
    assert "30 tokens per minute" in err["message"] and int(r.headers["retry-after"]) >= 1


async def test_auth_disabled_serves_everyone_as_admin(client):
    assert (await client.get("/admin/config")).status_code == 200
    r = await client.post("/v1/chat/completions", json=CHAT,
                          headers={"authorization": "Bearer anything"})
    assert r.status_code == 200


async def test_no_keys_configured_refuses_everything(keys, tmp_path, tiers, conversations):
    config = secured_config(keys, tmp_path, api_keys=[])
    app = create_app(RouterService(config, LocalTierClient(tiers), conversations))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers=keys.auth("admin"))
        assert r.status_code == 401


def test_paths_roles_and_route_prefixes():
    assert required_role("/health") is None and required_role("/openapi.json") is None
    assert required_role("/v1/chat/completions") == "inference"
    assert required_role("/admin/config") == "admin" and required_role("/admin") == "admin"
    assert required_role("/administrator") == "inference"
    prefixed = {"path": "/secure/admin/config", "root_path": "/secure"}
    assert relative_path(prefixed) == "/admin/config"
    assert relative_path({"path": "/admin/config", "root_path": ""}) == "/admin/config"
