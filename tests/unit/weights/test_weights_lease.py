"""One replica at a time: file leases, and Redis leases on a real redis-server."""

import asyncio
import time

import pytest

from tierserve.weights.lease import FileLease, LeaseTimeout, RedisLease


async def _contend(leases, hold_s=0.15):
    spans = []

    async def one(lease):
        async with lease.hold("app.smol", wait_s=10):
            start = time.monotonic()
            await asyncio.sleep(hold_s)
            spans.append((start, time.monotonic()))

    await asyncio.gather(*(one(lease) for lease in leases))
    spans.sort()
    return spans


def _disjoint(spans):
    return all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


async def test_file_lease_admits_one_holder_at_a_time(tmp_path):
    spans = await _contend([FileLease(tmp_path, f"r{i}") for i in range(3)])
    assert len(spans) == 3 and _disjoint(spans)


async def test_file_lease_times_out_and_frees_on_exit(tmp_path):
    first, second = FileLease(tmp_path, "a"), FileLease(tmp_path, "b")
    async with first.hold("k", wait_s=1):
        with pytest.raises(LeaseTimeout):
            async with second.hold("k", wait_s=0.3):
                pass
    async with second.hold("k", wait_s=0.3):
        assert "b since" in (tmp_path / "k.lock").read_text()


async def test_redis_lease_admits_one_holder_at_a_time(redis_server):
    leases = [RedisLease(redis_server.url, "t", ttl_s=5, holder=f"r{i}") for i in range(3)]
    spans = await _contend(leases)
    assert len(spans) == 3 and _disjoint(spans)


async def test_redis_lease_is_renewed_while_held_and_released_only_by_its_holder(redis_server):
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_server.url)
    lease = RedisLease(redis_server.url, "t", ttl_s=0.6, holder="slow")
    other = RedisLease(redis_server.url, "t", ttl_s=0.6, holder="other")
    async with lease.hold("k", wait_s=1):
        await asyncio.sleep(1.0)  # longer than the TTL: the renewal keeps it
        assert (await client.get("t:lease:k")).startswith(b"slow:")
        with pytest.raises(LeaseTimeout, match="held by"):
            async with other.hold("k", wait_s=0.2):
                pass
    assert await client.get("t:lease:k") is None
    await client.aclose()


async def test_a_crashed_holders_redis_lease_expires(redis_server):
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_server.url)
    await client.set("t:lease:k", "dead-holder", px=300)  # a replica that died holding it
    begin = time.monotonic()
    async with RedisLease(redis_server.url, "t", ttl_s=5).hold("k", wait_s=5):
        assert time.monotonic() - begin >= 0.2
    await client.aclose()
