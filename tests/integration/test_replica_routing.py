"""Replica routing on the real stack: HTTP → router ingress → our Serve request router →
two replicas of a real vLLM CPU engine (prefix caching on), affinity kept in real Redis.

The turns of one conversation land on one replica; when that replica is killed
mid-conversation the next turn is served by the other one, with its whole history.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.integration.conftest import MODELS_DIR, smol
from tierserve.config import parse_config

APP = "replica-routing"
PREFIX = "/replica-routing"
DEPLOYMENT = "rr-smol"
SYSTEM = ("You are a patient assistant for a museum. Answer in one short sentence. "
          "Visitors ask about opening hours, tickets, exhibitions and the café. ") * 6


def replica_actor(unique_id: str):
    import ray

    return ray.get_actor(f"SERVE_REPLICA::{APP}#{DEPLOYMENT}#{unique_id}", namespace="serve")


@pytest.fixture(scope="module")
def routed(platform):
    from ray import serve

    from tierserve.platform.app import build_app

    config = parse_config({
        "models_dir": str(MODELS_DIR),
        "context": {"redis_url": platform.redis.url},
        "routing": {"default_tier": "7b"},
        "security": {"auth": "disabled"},  # loopback test app; auth is tested in test_security
        "tiers": [{"id": "7b", "variants": [smol(
            DEPLOYMENT, scaling={"min_replicas": 2, "max_replicas": 2},
            replica_routing={"policy": "affinity+prefix", "stats_period_s": 0.5})]}],
    })
    begin = time.monotonic()
    serve.run(build_app(config), name=APP, route_prefix=PREFIX)
    print(f"\n{APP}: 2 replicas deployed in {time.monotonic() - begin:.1f} s")
    yield f"{platform.url}{PREFIX}"
    serve.delete(APP)


def turn(url: str, cid: str, text: str) -> httpx.Response:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
        "model": DEPLOYMENT, "conversation_id": cid, "temperature": 0, "max_tokens": 8,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r


def remembered(platform, cid: str) -> str | None:
    import redis

    client = redis.Redis.from_url(platform.redis.url)
    keys = client.keys(f"tierserve:conv:*:{cid}}}:meta")
    assert len(keys) == 1, keys
    value = client.hget(keys[0], f"replica:{DEPLOYMENT}")
    return value.decode() if value is not None else None


def test_turns_stay_on_one_replica_then_move_when_it_dies(routed, platform):
    import ray

    first = [turn(routed, "rr-1", f"Question {i}: when does the museum open?") for i in range(3)]
    home = {r.headers["x-tierserve-replica"] for r in first}
    assert len(home) == 1, f"turns of one conversation spread over {home}"
    home_id = home.pop()
    assert remembered(platform, "rr-1") == home_id  # recorded beside the conversation
    stats = ray.get(replica_actor(home_id).record_routing_stats.remote())
    assert stats["replica"] == home_id
    assert stats["prefix_cache_hits"] > 0, stats  # turn 2 and 3 reused turn 1's KV blocks

    ray.kill(replica_actor(home_id), no_restart=True)
    moved = turn(routed, "rr-1", "And after the replica died?")
    new_home = moved.headers["x-tierserve-replica"]
    assert new_home != home_id
    before = first[-1].json()["usage"]["prompt_tokens"]
    assert moved.json()["usage"]["prompt_tokens"] > before  # the whole history came along
    assert wait_for(lambda: remembered(platform, "rr-1") == new_home, 5)
    again = turn(routed, "rr-1", "Still there?")
    assert again.headers["x-tierserve-replica"] == new_home
    stored = httpx.get(f"{routed}/v1/conversations/rr-1", timeout=30).json()["turns"]
    assert len(stored) == 10
    assert stored[6]["content"] == "And after the replica died?"
    assert stored[7]["content"] == moved.json()["choices"][0]["message"]["content"]
