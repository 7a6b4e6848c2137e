"""What a tier replica tells the request router: its id on answers, its routing stats."""

from __future__ import annotations

from tierserve.deployments.engine import GenerationRequest, SamplingOptions
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment


async def make(replica_id=None) -> TierDeployment:
    dep = TierDeployment("7b", "v", {}, engine_factory=lambda n, a: FakeEngine(n, 128))
    dep.replica_id = replica_id
    await dep.start()
    return dep


async def test_first_chunk_names_the_replica():
    dep = await make("abc123")
    request = GenerationRequest("r1", SamplingOptions(max_tokens=3, ignore_eos=True), prompt="x y")
    chunks = [c async for c in dep.generate(request)]
    assert [c.replica for c in chunks] == ["abc123", None, None]
    plain = await make(None)
    assert all(c.replica is None for c in [c async for c in plain.generate(request)])


async def test_routing_stats_carry_queue_kv_and_prefix_cache_counts():
    dep = await make("abc123")
    stats = await dep.record_routing_stats()
    assert stats == {"replica": "abc123", "queue_depth": 0, "kv_cache_usage": 0.0,
                     "prefix_cache_queries": 0, "prefix_cache_hits": 0}
