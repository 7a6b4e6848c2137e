"""Hot weight reload on the real stack: HTTP → router → two replicas of a real vLLM CPU
engine (SmolLM2) following a local weight store, announcements and leases in a real
redis-server.

New versions are built at test time from the installed model: its MLP down-projections
scaled by 1.5 (greedy answers change), a truncated weight file, a deeper config.json.
The app is our own ("reload" at /reload), deleted at module teardown.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fixtures.waiting import wait_for
from tests.integration.conftest import MODELS_DIR, free_port, smol
from tierserve.config import parse_config
from tierserve.platform.cli import main as cli
from tierserve.weights.announce import Announcement, RedisAnnouncer
from tierserve.weights.audit import read_audit
from tierserve.weights.store import LocalWeightStore

APP, PREFIX, VARIANT, TRACK = "reload", "/reload", "reload-smol", "7b"
CHANNEL = "tierserve-test:weights"
QUESTION = "What is the capital of France?"
STREAMS = 16


def variant_copy(src: Path, dst: Path, change: str) -> Path:
    """A new checkpoint derived from `src`: 'scaled' weights, a 'truncated' weight file
    (valid header, missing data), or a 'deeper' architecture."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))
    weights = dst / "model.safetensors"
    if change == "scaled":
        from safetensors.torch import load_file, save_file

        tensors = load_file(weights)
        for name in tensors:
            if "mlp.down_proj" in name:
                tensors[name] = tensors[name] * 1.5
        save_file(tensors, str(weights), metadata={"format": "pt"})
    elif change == "truncated":
        with open(weights, "r+b") as handle:
            handle.truncate(weights.stat().st_size - (1 << 20))
    elif change == "deeper":
        config = json.loads((dst / "config.json").read_text())
        config["num_hidden_layers"] += 2
        (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.fixture(scope="module")
def reload_app(ray_cluster, session_redis, tmp_path_factory):
    from ray import serve
    from ray.serve.context import _get_global_client

    from tierserve.platform.app import build_app

    work = tmp_path_factory.mktemp("weights")
    base = MODELS_DIR / "smollm2-135m-instruct"
    data = {
        "models_dir": str(MODELS_DIR),
        "context": {"redis_url": session_redis.url},
        "routing": {"default_tier": TRACK},
        "security": {"auth": "disabled"},  # loopback test app; auth is tested elsewhere
        "weights": {"root": str(work / "store"), "announce": "redis", "channel_prefix": CHANNEL,
                    "redis_poll_interval_s": 4.0},
        "tiers": [{"id": TRACK, "variants": [smol(
            VARIANT, scaling={"min_replicas": 2, "max_replicas": 2},
            replica_routing={"policy": "power_of_two"},  # spread streams over both replicas
            weights={"hot_reload": True})]}],
    }
    config = parse_config(data)
    (work / "config.yaml").write_text(yaml.safe_dump(data))
    store = LocalWeightStore(work / "store")
    store.publish(TRACK, base, publisher="test", version=1)  # replicas start from the store
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    port = _get_global_client().http_config.port
    begin = time.monotonic()
    serve.run(build_app(config), name=APP, route_prefix=PREFIX)
    print(f"\n{APP}: 2 replicas deployed in {time.monotonic() - begin:.1f} s")
    kit = type("Kit", (), {})()
    kit.url, kit.store, kit.work, kit.base = f"http://127.0.0.1:{port}{PREFIX}", store, work, base
    kit.config_path = str(work / "config.yaml")
    kit.audit = lambda: read_audit(work / "store" / "audit.jsonl")
    kit.announcer = RedisAnnouncer(session_redis.url, CHANNEL, 4.0)
    yield kit
    serve.delete(APP)


def reloads(kit, version: int, result: str | None = None) -> list[dict]:
    return [r for r in kit.audit() if r["event"] == "reload" and r["version"] == version
            and (result is None or r["result"] == result)]


def ask(kit) -> tuple[str, str]:
    r = httpx.post(f"{kit.url}/v1/chat/completions", timeout=60, json={
        "model": VARIANT, "temperature": 0, "max_tokens": 16,
        "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"], r.headers.get("x-tierserve-replica", "")


def answers_from_both_replicas(kit) -> set[str]:
    """Greedy answers until both replicas have answered (each must answer alike)."""
    by_replica: dict[str, set[str]] = {}
    for _ in range(24):
        text, replica = ask(kit)
        by_replica.setdefault(replica, set()).add(text)
        if len(by_replica) == 2:
            break
    assert len(by_replica) == 2, f"only replicas {list(by_replica)} answered"
    return set().union(*by_replica.values())


def publish(kit, source: Path, *extra: str) -> None:
    assert cli(["publish-weights", "--tier", TRACK, "--from", str(source), "--config",
                kit.config_path, "--quiet", "--publisher", "integration-test", *extra]) == 0


async def stream(client: httpx.AsyncClient, url: str, i: int) -> dict:
    body = {"model": VARIANT, "stream": True, "temperature": 0, "max_tokens": 96,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": f"Tell me a long story about robot {i}."}]}
    stamps, errors, finish, done = [], [], None, False
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        status, replica = r.status_code, r.headers.get("x-tierserve-replica", "")
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            frame = json.loads(line[6:])
            if "error" in frame:
                errors.append(frame["error"])
                continue
            choice = frame["choices"][0]
            if choice["delta"].get("content"):
                stamps.append(time.time())
            finish = choice.get("finish_reason") or finish
    return {"status": status, "replica": replica, "stamps": stamps, "errors": errors,
            "finish": finish, "done": done}


def serving_pause(results: list[dict], begin: float, end: float) -> float:
    """Per replica, the longest time no stream it served emitted a token within
    [begin, end]; the largest over replicas."""
    worst = 0.0
    for replica in {r["replica"] for r in results}:
        stamps = sorted(s for r in results if r["replica"] == replica for s in r["stamps"])
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b >= begin and a <= end]
        worst = max(worst, max(gaps, default=0.0))
    return worst


def test_replicas_start_from_the_stores_newest_version(reload_app):
    starts = [r for r in reload_app.audit() if r["event"] == "start"]
    assert len(starts) == 2 and {r["version"] for r in starts} == {1}
    assert len({r["actor"] for r in starts}) == 2
    models = httpx.get(f"{reload_app.url}/v1/models", timeout=30).json()["data"]
    assert next(m for m in models if m["id"] == VARIANT)["weights_version"] == 1
    reload_app.base_answers = answers_from_both_replicas(reload_app)
    assert reload_app.base_answers == {"The capital of France is Paris."}


def test_publish_under_16_streams_fails_nothing_and_switches_weights(reload_app):
    kit = reload_app
    scaled = variant_copy(kit.base, kit.work / "scaled", "scaled")

    async def scenario():
        async with httpx.AsyncClient(timeout=300) as client:
            tasks = [asyncio.create_task(stream(client, kit.url, i)) for i in range(STREAMS)]
            await asyncio.sleep(4)  # every stream admitted and producing tokens
            await asyncio.to_thread(publish, kit, scaled, "--version", "4")
            return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    done = wait_for(lambda: len(reloads(kit, 4, "ok")) == 2, 90)
    assert done, kit.audit()[-4:]
    ok = reloads(kit, 4, "ok")
    assert [r["status"] for r in results] == [200] * STREAMS
    summary = [(r["finish"], r["done"], r["errors"], len(r["stamps"])) for r in results]
    assert all(not r["errors"] and r["done"] and r["finish"] == "length" for r in results), summary
    assert all(len(r["stamps"]) > 0 for r in results)
    spans = sorted((r["started_at"], r["finished_at"]) for r in ok)
    assert spans[0][1] <= spans[1][0], f"replicas reloaded at the same time: {spans}"
    assert len({r["actor"] for r in ok}) == 2 and any(r["trigger"] == "announce" for r in ok)
    last_token = max(s for r in results for s in r["stamps"])
    assert spans[0][0] < last_token, "the reload did not happen under load"
    pause = serving_pause(results, spans[0][0], spans[1][1])
    print(f"\nreload under {STREAMS} streams: 0 failed; per-replica pause {pause:.3f} s; "
          f"engine pause {[r['pause_s'] for r in ok]} s; load {[r['load_s'] for r in ok]} s")
    assert pause < 3.0
    new_answers = answers_from_both_replicas(kit)
    assert len(new_answers) == 1 and new_answers != kit.base_answers
    kit.new_answers = new_answers
    models = httpx.get(f"{kit.url}/v1/models", timeout=30).json()["data"]
    assert next(m for m in models if m["id"] == VARIANT)["weights_version"] == 4


def test_a_corrupted_version_is_refused_and_the_old_weights_keep_serving(reload_app):
    kit = reload_app
    kit.store.publish(TRACK, kit.base, publisher="test", version=5)
    weights = kit.store.fetch(TRACK, 5) / "model.safetensors"
    with open(weights, "r+b") as handle:  # bit rot after publishing
        handle.seek(1 << 20)
        byte = handle.read(1)
        handle.seek(1 << 20)
        handle.write(bytes([byte[0] ^ 0xFF]))
    asyncio.run(kit.announcer.announce(Announcement(TRACK, 5, "test")))
    refused = wait_for(lambda: reloads(kit, 5, "refused"), 30)
    assert refused and refused[0]["reason"] == "checksum"
    assert "model.safetensors" in refused[0]["detail"]
    assert 5 in kit.store.rejected(TRACK)
    time.sleep(1)
    assert not reloads(kit, 5, "ok")
    assert answers_from_both_replicas(kit) == kit.new_answers


def test_an_older_version_is_refused(reload_app):
    kit = reload_app
    kit.store.publish(TRACK, kit.base, publisher="test", version=3)  # valid, but older than 4
    asyncio.run(kit.announcer.announce(Announcement(TRACK, 3, "test")))
    refused = wait_for(lambda: len({r["actor"] for r in reloads(kit, 3, "refused")}) == 2
                       and reloads(kit, 3), 30)
    assert refused and all(r["reason"] == "not_newer" for r in refused)
    assert not reloads(kit, 3, "ok")
    assert cli(["publish-weights", "--tier", TRACK, "--from", str(kit.base), "--version", "2",
                "--config", kit.config_path, "--quiet"]) == 2  # the CLI refuses it too
    assert answers_from_both_replicas(kit) == kit.new_answers


def test_a_failed_load_restores_the_previous_weights(reload_app):
    kit = reload_app
    publish(kit, variant_copy(kit.base, kit.work / "truncated", "truncated"))  # v6
    failed = wait_for(lambda: reloads(kit, 6, "restored") or reloads(kit, 6, "failed"), 60)
    assert failed and failed[0]["result"] == "restored", failed
    assert 6 in kit.store.rejected(TRACK)
    time.sleep(1)
    assert not reloads(kit, 6, "ok") and len(reloads(kit, 6, "restored")) == 1
    assert answers_from_both_replicas(kit) == kit.new_answers  # still v4, both healthy


def test_an_architecture_change_is_refused_in_place(reload_app):
    kit = reload_app
    publish(kit, variant_copy(kit.base, kit.work / "deeper", "deeper"))  # v7
    refused = wait_for(lambda: len({r["actor"] for r in reloads(kit, 7, "refused")}) == 2
                       and reloads(kit, 7), 30)
    assert refused and all(r["reason"] == "architecture" for r in refused)
    assert "num_hidden_layers" in refused[0]["detail"] and "redeploy" in refused[0]["detail"]
    assert answers_from_both_replicas(kit) == kit.new_answers


def test_replicas_find_an_unannounced_version_by_polling(reload_app):
    kit = reload_app
    kit.store.publish(TRACK, kit.base, publisher="test", version=8)  # a rollback, no message
    ok = wait_for(lambda: len(reloads(kit, 8, "ok")) == 2 and reloads(kit, 8, "ok"), 60)
    assert ok and {r["trigger"] for r in ok} == {"poll"}
    assert answers_from_both_replicas(kit) == kit.base_answers
