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

from tests.fixtures.waiting import wait_for
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


# --- weights encrypted at rest, through the weight store and a real vLLM replica --------

ENC_APP, ENC_PREFIX, ENC_VARIANT = "enc", "/enc", "enc-smol"


@pytest.fixture(scope="module")
def encrypted_app(platform, tmp_path_factory):
    import shutil
    import uuid

    from ray import serve

    from tests.integration.conftest import MODELS_DIR, smol
    from tierserve.platform.app import build_app
    from tierserve.security.crypto import encrypt_tree, load_key, write_new_key
    from tierserve.weights.store import LocalWeightStore

    work = tmp_path_factory.mktemp("encrypted")
    key_file = work / "weights.key"
    write_new_key(key_file)
    shm = Path("/dev/shm") / f"tierserve-test-{uuid.uuid4().hex[:8]}"
    base = MODELS_DIR / "smollm2-135m-instruct"
    encrypt_tree(base, work / "sealed-v1", load_key(key_file))
    store = LocalWeightStore(work / "store")
    store.publish("7b", work / "sealed-v1", publisher="test", version=1)
    data = {
        "models_dir": str(MODELS_DIR), "routing": {"default_tier": "7b"},
        "server": {"app_name": ENC_APP},
        "security": {"auth": "disabled",
                     "weights": {"key_file": str(key_file), "tmpfs_dir": str(shm)}},
        "weights": {"root": str(work / "store"), "announce": "poll", "poll_interval_s": 1.0,
                    "opener": "encrypted"},
        "tiers": [{"id": "7b", "variants": [smol(ENC_VARIANT, weights={"hot_reload": True})]}],
    }
    serve.run(build_app(parse_config(data)), name=ENC_APP, route_prefix=ENC_PREFIX)
    kit = type("Kit", (), {})()
    kit.url, kit.store, kit.work, kit.shm, kit.key = (f"{platform.url}{ENC_PREFIX}", store,
                                                     work, shm, load_key(key_file))
    kit.base = base
    yield kit
    if ENC_APP in serve.status().applications:
        serve.delete(ENC_APP)
    shutil.rmtree(shm, ignore_errors=True)


def _weights_audit(kit) -> list[dict]:
    from tierserve.weights.audit import read_audit

    return read_audit(kit.work / "store" / "audit.jsonl")


def _answer(kit) -> str:
    r = httpx.post(f"{kit.url}/v1/chat/completions", timeout=120, json={
        "model": ENC_VARIANT, "temperature": 0, "max_tokens": 16, "messages": ASK})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def test_encrypted_weights_load_from_tmpfs_only(encrypted_app):
    kit = encrypted_app
    starts = [r for r in _weights_audit(kit) if r["event"] == "start"]
    assert [(r["version"], r["result"]) for r in starts] == [(1, "ok")]
    assert "Paris" in _answer(kit)
    stored = kit.store.fetch("7b", 1)
    assert not list(stored.rglob("*.safetensors"))  # only .tsenc at rest
    copies = list(kit.shm.iterdir())
    assert len(copies) == 1 and (copies[0] / "model.safetensors").is_file()


def test_tampered_encrypted_version_is_refused_and_reported(encrypted_app):
    import shutil

    kit = encrypted_app
    tampered = kit.work / "tampered"
    shutil.copytree(kit.work / "sealed-v1", tampered)
    sealed = tampered / "model.safetensors.tsenc"
    with open(sealed, "r+b") as handle:  # one flipped bit in the middle of the weights
        handle.seek(sealed.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 1]))
    # The store hashes what it is given, so its own checksums agree: only GCM can tell.
    kit.store.publish("7b", tampered, publisher="attacker", version=2)
    refused = wait_for(lambda: [r for r in _weights_audit(kit)
                                if r["event"] == "reload" and r["version"] == 2], 90)
    assert refused and refused[0]["result"] == "refused", refused
    assert refused[0]["reason"] == "checksum" and "authentication" in refused[0]["detail"]
    assert 2 in kit.store.rejected("7b")
    assert "Paris" in _answer(kit)  # still serving version 1
    assert len(list(kit.shm.iterdir())) == 1  # nothing of the refused version left


def test_good_encrypted_version_hot_reloads_and_releases_the_old_copy(encrypted_app):
    import shutil

    from safetensors.torch import load_file, save_file

    from tierserve.security.crypto import encrypt_tree

    kit = encrypted_app
    before = _answer(kit)
    scaled = kit.work / "scaled"
    shutil.copytree(kit.base, scaled, ignore=shutil.ignore_patterns(".*"))
    tensors = load_file(scaled / "model.safetensors")
    for name in tensors:
        if "mlp.down_proj" in name:
            tensors[name] = tensors[name] * 1.5
    save_file(tensors, str(scaled / "model.safetensors"), metadata={"format": "pt"})
    encrypt_tree(scaled, kit.work / "sealed-v3", kit.key)
    kit.store.publish("7b", kit.work / "sealed-v3", publisher="test", version=3)
    assert wait_for(lambda: any(r["event"] == "reload" and r["version"] == 3 and r["result"] == "ok"
                                for r in _weights_audit(kit)), 90)
    assert _answer(kit) != before  # the new weights answer
    assert len(list(kit.shm.iterdir())) == 1  # v1's clear copy released


def test_stopping_the_replica_removes_the_clear_copy(encrypted_app):
    from ray import serve

    serve.delete(ENC_APP)
    assert wait_for(lambda: not list(encrypted_app.shm.iterdir()), 30)
