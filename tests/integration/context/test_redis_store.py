"""The Redis context store against a real redis-server (no Ray needed)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tierserve.config import parse_config
from tierserve.context.conversations import ConversationService
from tierserve.context.redis_store import RedisContextStore
from tierserve.context.store import ContextUnavailable, ConversationKey, Turn
from tierserve.context.tokens import WordTokenCounter
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tests.unit.conftest import small_config


def key(cid="c1", cred="k"):
    return ConversationKey.for_credential(cred, cid)


@pytest.fixture
async def store(redis_server):
    s = RedisContextStore(redis_server.url, max_turns=6, ttl_s=100, retry_after_failure_s=0.2)
    yield s
    await s.close()


async def test_roundtrip_seq_cap_ttl_unicode(store, redis_server):
    for i in range(4):
        await store.append(key(), [Turn("user", f"问题 {i} ✓"), Turn("assistant", f"答 {i}")],
                           system="系统" if i == 0 else None)
    conv = await store.load(key())
    assert [t.seq for t in conv.turns] == [3, 4, 5, 6, 7, 8]
    assert conv.turns[0].content == "问题 1 ✓" and conv.system == "系统"
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    ttls = [raw.ttl(k) for k in raw.keys("tierserve:conv:*")]
    assert len(ttls) == 2 and all(90 < t <= 100 for t in ttls)


async def test_concurrent_appends_never_lose_or_split(store):
    store.max_turns = 10_000
    await asyncio.gather(*(store.append(key(), [Turn("user", f"q{i}"), Turn("assistant", f"a{i}")])
                           for i in range(100)))
    turns = (await store.load(key())).turns
    assert [t.seq for t in turns] == list(range(1, 201))
    assert all(q.content[1:] == a.content[1:] for q, a in zip(turns[::2], turns[1::2]))


async def test_failure_degrades_then_reconnects(store, redis_server):
    await store.append(key(), [Turn("user", "kept")])
    redis_server.kill()
    with pytest.raises(ContextUnavailable):
        await store.load(key())
    with pytest.raises(ContextUnavailable, match="recent failure"):  # breaker: no new timeout
        await store.load(key())
    assert store.errors_total == 1
    redis_server.start()
    await _eventually(lambda: store.append(key("c2"), [Turn("user", "after restart")]))
    assert (await store.load(key("c2"))).turns[0].content == "after restart"


async def test_replica_affinity_is_shared(store, redis_server):
    other = RedisContextStore(redis_server.url, max_turns=6, ttl_s=100)
    await store.set_replica(key(), "smol-7b", "replica-a")
    assert await other.get_replica(key(), "smol-7b") == "replica-a"
    await other.close()


@pytest.fixture
async def redis_client(redis_server):
    """The real router app over a real Redis store; engines are FakeEngines (fast)."""
    config = parse_config(small_config())
    counter = WordTokenCounter()
    # 200 sessions share 64 pooled connections on a busy 2-core CI host: a 5 s per-operation
    # budget keeps this about ordering and atomicity; the kill tests cover failures.
    store = RedisContextStore(redis_server.url, max_turns=1000, ttl_s=600, op_timeout_s=5.0,
                              retry_after_failure_s=0.2)
    conversations = ConversationService(store, {v.name: counter for _, v in config.variants()},
                                        {v.name: 4096 for _, v in config.variants()}, config.context)
    tiers = {}
    for tier, v in config.variants():
        tiers[v.name] = TierDeployment(tier.id, v.name, {}, engine_factory=lambda n, a: FakeEngine(n, 4096))
        await tiers[v.name].start()
    app = create_app(RouterService(config, LocalTierClient(tiers), conversations))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await store.close()


async def _session(client, sid: int, turns: int) -> list[int]:
    codes = []
    for t in range(turns):
        r = await client.post("/v1/chat/completions", json={
            "model": "33b", "conversation_id": f"s{sid}", "stream": t % 2 == 1,
            "messages": [{"role": "user", "content": f"session {sid} turn {t}"}]})
        codes.append(r.status_code)
        assert r.headers.get("x-tierserve-context") in (None, "ok"), (sid, t, dict(r.headers))
    return codes


async def test_200_concurrent_sessions_no_lost_or_duplicated_turn(redis_client):
    results = await asyncio.gather(*(_session(redis_client, s, 4) for s in range(200)))
    assert all(code == 200 for codes in results for code in codes)
    for s in range(200):
        turns = (await redis_client.get(f"/v1/conversations/s{s}")).json()["turns"]
        users = [t["content"] for t in turns if t["role"] == "user"]
        assert users == [f"session {s} turn {t}" for t in range(4)], (s, users)
        assert [t["seq"] for t in turns] == list(range(1, 9))


async def test_redis_killed_mid_run_then_restarted(redis_client, redis_server):
    assert (await _session(redis_client, 900, 2)) == [200, 200]
    redis_server.kill()
    r = await redis_client.post("/v1/chat/completions", json={
        "model": "33b", "conversation_id": "s900", "messages": [{"role": "user", "content": "while down"}]})
    assert r.status_code == 200 and r.headers["x-tierserve-context"] == "unavailable"
    redis_server.start()

    async def served_with_context():
        r = await redis_client.post("/v1/chat/completions", json={
            "model": "33b", "conversation_id": "s901",
            "messages": [{"role": "user", "content": "back"}]})
        assert r.status_code == 200
        if r.headers["x-tierserve-context"] != "ok":
            raise ContextUnavailable("not reconnected yet")

    await _eventually(served_with_context)
    assert len((await redis_client.get("/v1/conversations/s901")).json()["turns"]) == 2


async def _eventually(attempt, timeout_s: float = 5.0) -> None:
    """Retry `attempt` until it stops raising ContextUnavailable: the store reconnects by
    itself once its short circuit breaker (0.2 s here) lets a command through; on a busy
    machine that can take more than one fixed pause."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await attempt()
            return
        except ContextUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
