"""A replica following its track: the FakeEngine stands in for vLLM; store, leases, audit
log and (where named) Redis are real."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.files import flip_byte
from tests.unit.weights.conftest import BASE_CONFIG
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.weights.audit import read_audit
from tierserve.weights.follower import WeightsFollower
from tierserve.weights.spec import ReplicaWeightsSpec


def spec_for(tmp_path, redis_url=None, poll_s=0.05) -> ReplicaWeightsSpec:
    return ReplicaWeightsSpec(
        track="7b", lease_key="app.smol", store="local", root=str(tmp_path / "store"),
        opener="plain", announce="auto", redis_url=redis_url, channel_prefix="t:weights",
        poll_interval_s=poll_s, redis_poll_interval_s=30, lease_ttl_s=10, lease_wait_s=10,
        audit_log=str(tmp_path / "audit.jsonl"))


@pytest.fixture
def kit(tmp_path, store, checkpoint):
    base = checkpoint("base", fill=0)

    class Kit:
        async def replica(self, name="r1", redis_url=None, poll_s=0.05, delay_s=0.0):
            """A started replica: its follower (not watching yet), engine and start path."""
            follower = WeightsFollower(spec_for(tmp_path, redis_url, poll_s), name)
            engine = FakeEngine(name)
            engine.reload_delay_s = delay_s
            path = await follower.initial(str(base))
            follower.attach(engine, watch=False)
            return follower, engine, path

        def publish(self, fill, version=None, **checkpoint_args):
            source = checkpoint(f"v{fill}-{version}", fill=fill, **checkpoint_args)
            return store.publish("7b", source, publisher="op", version=version)

        def audit(self):
            return read_audit(tmp_path / "audit.jsonl")

    kit = Kit()
    kit.store = store
    return kit


async def test_a_replica_starts_from_the_newest_good_version(kit):
    follower, _, path = await kit.replica()
    assert path is None and follower.version == 0  # nothing published: the configured model
    kit.publish(1)
    kit.publish(2)
    kit.store.reject("7b", 2, "checksum", "r0")
    follower, _, path = await kit.replica("r2")
    assert follower.version == 1 and path == str(kit.store.fetch("7b", 1))
    assert kit.audit()[-1]["event"] == "start" and kit.audit()[-1]["version"] == 1


async def test_a_newer_version_is_verified_and_loaded(kit):
    follower, engine, _ = await kit.replica()
    kit.publish(1)
    record = await follower.check("poll")
    assert record["result"] == "ok" and record["version"] == 1 and record["from_version"] == 0
    assert engine.reloads == [str(kit.store.fetch("7b", 1))] and engine.weights_label == "v1"
    assert follower.version == 1 and follower.status()["version"] == 1
    assert await follower.check("poll") is None  # nothing new


async def test_versions_not_newer_are_refused(kit):
    follower, engine, _ = await kit.replica()
    kit.publish(5, version=5)
    await follower.check("poll")
    kit.publish(3, version=3)  # published later, but older
    assert await follower.check("poll") is None
    refused = kit.audit()[-1]
    assert (refused["result"], refused["reason"], refused["version"]) == ("refused", "not_newer", 3)
    await follower.check("announce", announced=5)  # a replayed announcement of the loaded one
    assert kit.audit()[-1]["reason"] == "not_newer" and kit.audit()[-1]["version"] == 5
    assert follower.version == 5 and len(engine.reloads) == 1


async def test_a_corrupted_version_is_refused_before_the_engine_sees_it(kit):
    follower, engine, _ = await kit.replica()
    kit.publish(1)
    await follower.check("poll")
    kit.publish(2)
    flip_byte(kit.store.fetch("7b", 2) / "model.safetensors", 100, 0xFF)
    assert (await follower.check("announce", announced=2))["result"] == "refused"
    assert follower.version == 1 and len(engine.reloads) == 1  # still serving v1
    last = kit.audit()[-1]
    assert last["reason"] == "checksum" and "model.safetensors" in last["detail"]
    assert 2 in kit.store.rejected("7b")
    other, other_engine, path = await kit.replica("r2")  # a new replica skips it too
    assert other.version == 1 and other_engine.reloads == []


async def test_an_architecture_change_is_refused_for_in_place_reload(kit):
    follower, engine, _ = await kit.replica()
    kit.publish(1, config={**BASE_CONFIG, "num_hidden_layers": 2})
    record = await follower.check("poll")
    assert record["result"] == "refused" and record["reason"] == "architecture"
    assert "num_hidden_layers" in record["detail"] and "redeploy" in record["detail"]
    assert engine.reloads == [] and follower.version == 0
    assert 1 not in kit.store.rejected("7b")  # not bad weights: a fresh deployment may use them


async def test_a_failed_load_keeps_the_previous_weights_and_rejects_the_version(kit):
    follower, engine, _ = await kit.replica()
    kit.publish(1)
    await follower.check("poll")
    kit.publish(2)
    engine.fail_reloads.add(str(kit.store.fetch("7b", 2)))
    record = await follower.check("poll")
    assert record["result"] == "restored" and record["loaded_version"] == 1
    assert follower.version == 1 and engine.weights_label == "v1"
    assert "load failed" in kit.store.rejected("7b")[2]
    assert await follower.check("poll") is None  # not retried


async def test_replicas_reload_one_at_a_time(kit):
    replicas = [await kit.replica(f"r{i}", delay_s=0.2) for i in range(3)]
    kit.publish(1)
    records = await asyncio.gather(*(f.check("announce", announced=1) for f, _, _ in replicas))
    assert [r["result"] for r in records] == ["ok"] * 3
    spans = sorted((r["started_at"], r["finished_at"]) for r in records)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert sum(r["lease_wait_s"] > 0.1 for r in records) == 2


async def reaches(follower, version: int, timeout_s: float = 2.0) -> None:
    """Wait until the watcher has loaded `version` (or time out; the caller asserts)."""
    for _ in range(int(timeout_s / 0.02)):
        if follower.version == version:
            return
        await asyncio.sleep(0.02)


async def test_the_watcher_polls_the_store(kit):
    follower, engine, _ = await kit.replica(poll_s=0.05)
    follower.attach(engine)  # now watching
    kit.publish(1)
    await reaches(follower, 1)
    await follower.stop()
    assert follower.version == 1 and kit.audit()[-1]["trigger"] == "poll"


async def test_the_watcher_reloads_on_a_redis_announcement(kit, redis_server):
    from tierserve.weights.announce import Announcement, RedisAnnouncer

    follower, engine, _ = await kit.replica(redis_url=redis_server.url)
    assert follower.announcer.kind == "redis" and follower.lease.kind == "redis"
    follower.attach(engine)
    await asyncio.sleep(0.3)  # subscribed
    kit.publish(1)
    await RedisAnnouncer(redis_server.url, "t:weights", 30).announce(Announcement("7b", 1))
    await reaches(follower, 1)
    await follower.stop()
    assert follower.version == 1 and kit.audit()[-1]["trigger"] == "announce"
