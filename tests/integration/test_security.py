"""Keys, roles, rate limits, request limits and audit through the real stack.

A keyed router app ("secure" at /secure) is deployed in front of the session platform's
real vLLM tier deployments (their handles are passed in, no engine is started twice),
with rate-limit buckets and the audit stream in the session's real redis-server. Calls
go through the Ray Serve HTTP proxy, with the `openai` SDK where it has a call for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import APP
from tierserve.config import TierServeConfig, parse_config
from tierserve.security.audit import verify_chain
from tierserve.security.keys import generate_key, key_entry

ASK = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass
class SecureApp:
    url: str
    name: str
    config: TierServeConfig
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[who]}"}

    def sdk(self, who: str | None) -> openai.OpenAI:
        key = self.keys[who] if who in self.keys else (who or "ts-wrong-key-000000000000")
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0,
                             timeout=120)

    @property
    def audit_path(self) -> Path:
        return Path(self.config.security.audit.path)


def deploy_secure_router(platform, name: str, prefix: str, workdir: Path) -> SecureApp:
    """A router with auth required, sharing the session platform's tier deployments."""
    from ray import serve

    from tierserve.router.ingress import RouterIngress

    keys = {who: generate_key() for who in ("admin", "app", "other", "tight", "tokens")}
    entries = [key_entry("ops", "admin", keys["admin"]),
               key_entry("app", "inference", keys["app"]),
               key_entry("other", "inference", keys["other"]),
               # Limited keys get per-app ids: buckets live in the shared Redis by key id.
               key_entry(f"tight-{name}", "inference", keys["tight"], requests_per_min=2),
               key_entry(f"tokens-{name}", "inference", keys["tokens"], tokens_per_min=40)]
    data = platform.config.model_dump(mode="json")
    data["server"]["app_name"] = name
    data["router"].update({"max_request_bytes": 64 << 10, "max_completion_tokens": 64})
    data["security"] = {
        "auth": "required", "api_keys": [e.model_dump() for e in entries],
        "rate_limits": {"store": "redis", "requests_per_min": 1000},
        "audit": {"path": str(workdir / "audit.jsonl"), "redis_stream": f"test:{name}:audit"},
    }
    config = parse_config(data)
    handles = {v.name: serve.get_deployment_handle(v.name, app_name=APP)
               for _, v in config.variants()}
    router = serve.deployment(serve.ingress()(RouterIngress), name="router",
                              ray_actor_options={"num_cpus": 0})
    serve.run(router.bind(config.model_dump(mode="json"), handles), name=name,
              route_prefix=prefix)
    return SecureApp(f"{platform.url}{prefix}", name, config, keys)


@pytest.fixture(scope="module")
def secure(platform, tmp_path_factory):
    from ray import serve

    app = deploy_secure_router(platform, "secure", "/secure", tmp_path_factory.mktemp("secure"))
    yield app
    serve.delete(app.name)


def test_sdk_without_a_valid_key_is_401(secure):
    for key in (None, "ts-made-up-key-123456789"):
        with pytest.raises(openai.AuthenticationError) as err:
            secure.sdk(key).chat.completions.create(model="7b", messages=ASK, max_tokens=4)
        assert err.value.status_code == 401
        assert err.value.body["code"] in ("missing_api_key", "invalid_api_key")
    r = httpx.post(f"{secure.url}/v1/chat/completions", content=b"{not json", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{secure.url}/health", timeout=30).status_code == 200


def test_sdk_with_a_key_gets_real_answers(secure):
    oai = secure.sdk("app")
    reply = oai.chat.completions.create(model="auto", messages=ASK, temperature=0,
                                        max_tokens=24)
    assert "Paris" in reply.choices[0].message.content
    stream = oai.chat.completions.create(model="7b", messages=ASK, temperature=0, max_tokens=24,
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "Paris" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [m.id for m in oai.models.list().data][:2] == ["auto", "7b"]


def test_admin_endpoints_need_the_admin_role_and_are_audited(secure):
    import redis

    r = httpx.get(f"{secure.url}/admin/config", headers=secure.auth("app"), timeout=30)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = httpx.get(f"{secure.url}/admin/config", headers=secure.auth("admin"), timeout=30)
    assert r.status_code == 200 and r.json()["security"]["auth"] == "required"
    assert "sha256" not in r.text
    r = httpx.get(f"{secure.url}/admin/keys", timeout=30)
    assert r.status_code == 401
    records = [json.loads(line) for line in secure.audit_path.read_text().splitlines()]
    assert [(r["actor"], r["action"], r["result"]) for r in records[-3:]] == [
        ("app", "GET /admin/config", "403"), ("ops", "GET /admin/config", "200"),
        ("unauthenticated", "GET /admin/keys", "401")]
    assert verify_chain(secure.audit_path).intact
    stream = redis.Redis.from_url(secure.config.context.redis_url).xrange(
        secure.config.security.audit.redis_stream)
    streamed = [json.loads(fields[b"record"]) for _, fields in stream]
    assert [(s["actor"], s["result"]) for s in streamed[-3:]] == [
        ("app", "403"), ("ops", "200"), ("unauthenticated", "401")]


def test_requests_per_minute_limit_is_429_with_retry_after(secure):
    oai = secure.sdk("tight")
    for _ in range(2):
        oai.chat.completions.create(model="7b", messages=ASK, max_tokens=2)
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model="7b", messages=ASK, max_tokens=2)
    assert err.value.status_code == 429
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 30
    assert "2 requests per minute" in err.value.body["message"]
    # The bucket lives in Redis: any router replica sees the same count.
    import redis

    keys = redis.Redis.from_url(secure.config.context.redis_url).keys("tierserve:rl:*tight*")
    assert keys


def test_tokens_per_minute_limit_counts_real_usage(secure):
    oai = secure.sdk("tokens")
    reply = oai.chat.completions.create(model="7b", messages=ASK, max_tokens=16,
                                        temperature=0)
    assert reply.usage.total_tokens > 40  # the answer put the key over its 40 tokens/min
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model="7b", messages=ASK, max_tokens=2)
    assert "40 tokens per minute" in err.value.body["message"]


def test_request_limits_are_clear_4xx(secure):
    headers = {**secure.auth("app"), "content-type": "application/json"}

    def chunked():
        yield b'{"model": "7b", "messages": [{"role": "user", "content": "hi"}]}'
        for _ in range(20):
            yield b" " * (8 << 10)  # 160 KiB of whitespace, no Content-Length

    r = httpx.post(f"{secure.url}/v1/chat/completions", content=chunked(), headers=headers,
                   timeout=60)
    assert r.status_code == 413, r.text
    oai = secure.sdk("app")
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="7b", messages=ASK, max_tokens=65)
    assert err.value.body["param"] == "max_tokens" and "at most 64" in err.value.body["message"]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as err:
            oai.completions.create(model="7b", prompt="word " * 1500, max_tokens=4, stream=stream)
        assert err.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="7b", max_tokens=4,
                                    messages=[{"role": "user", "content": "x"}] * 600)
    assert err.value.body["param"] == "messages"


def test_conversations_are_scoped_to_keys_and_admin_reaches_all(secure):
    body = {"model": "7b", "conversation_id": "sec-1", "max_tokens": 6,
            "messages": [{"role": "user", "content": "My name is Ada."}]}
    r = httpx.post(f"{secure.url}/v1/chat/completions", json=body, headers=secure.auth("app"),
                   timeout=120)
    assert r.status_code == 200 and r.headers["x-tierserve-context"] == "ok"
    assert httpx.get(f"{secure.url}/v1/conversations/sec-1", headers=secure.auth("other"),
                     timeout=30).status_code == 404
    assert httpx.get(f"{secure.url}/v1/conversations/sec-1", headers=secure.auth("app"),
                     timeout=30).status_code == 200
    url = f"{secure.url}/admin/conversations/app/sec-1"
    assert httpx.get(url, headers=secure.auth("other"), timeout=30).status_code == 403
    stored = httpx.get(url, headers=secure.auth("admin"), timeout=30).json()
    assert stored["turns"][0]["content"] == "My name is Ada."
    assert httpx.delete(url, headers=secure.auth("admin"), timeout=30).json()["deleted"]
    assert httpx.get(f"{secure.url}/v1/conversations/sec-1", headers=secure.auth("app"),
                     timeout=30).status_code == 404
    actions = [json.loads(line)["action"] for line in secure.audit_path.read_text().splitlines()]
    assert "DELETE /admin/conversations/app/sec-1" in actions
