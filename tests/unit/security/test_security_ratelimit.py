"""Rate limits: the bucket arithmetic, memory buckets, Redis buckets (real redis-server)."""

from __future__ import annotations

import pytest

from tierserve.config import RateLimitConfig
from tierserve.errors import RateLimited
from tierserve.security.keys import Principal
from tierserve.security.ratelimit import (
    MemoryBuckets,
    Op,
    RateLimiter,
    RedisBuckets,
    bucket_step,
    make_buckets,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_take_spends_and_refills_continuously():
    step = bucket_step(None, None, 0.0, capacity=3, per_s=1.0, cost=1, mode="take")
    assert step.allowed and step.level == 2
    step = bucket_step(0.0, 10.0, 10.0, 3, 1.0, 1, "take")
    assert not step.allowed and step.retry_after_s == pytest.approx(1.0)
    step = bucket_step(0.0, 10.0, 10.5, 3, 1.0, 1, "take")
    assert not step.allowed and step.retry_after_s == pytest.approx(0.5)
    assert bucket_step(0.0, 10.0, 100.0, 3, 1.0, 1, "take").level == 2  # capped at capacity


def test_check_admits_until_debt_and_charge_floors_at_minus_capacity():
    assert bucket_step(5.0, 0.0, 0.0, 10, 1.0, 0, "check").allowed
    assert bucket_step(5.0, 0.0, 0.0, 10, 1.0, 7, "charge").level == -2
    step = bucket_step(-2.0, 0.0, 0.0, 10, 1.0, 0, "check")
    assert not step.allowed and step.retry_after_s == pytest.approx(3.0)
    assert bucket_step(0.0, 0.0, 0.0, 10, 1.0, 1000, "charge").level == -10


async def test_limiter_requests_per_minute_with_retry_after():
    clock = Clock()
    limiter = RateLimiter(MemoryBuckets(clock))
    who = Principal("app", "inference", requests_per_min=2)
    await limiter.admit(who)
    await limiter.admit(who)
    with pytest.raises(RateLimited) as err:
        await limiter.admit(who)
    assert err.value.status_code == 429 and err.value.retry_after_s == 30
    assert "2 requests per minute" in err.value.message
    clock.now += 30
    await limiter.admit(who)
    assert limiter.limited_total == 1


async def test_limiter_tokens_are_charged_after_the_fact():
    clock = Clock()
    limiter = RateLimiter(MemoryBuckets(clock))
    who = Principal("app", "inference", tokens_per_min=60)
    await limiter.admit(who)
    await limiter.charge(who, 90)  # one big answer puts the key 30 tokens in debt
    with pytest.raises(RateLimited) as err:
        await limiter.admit(who)
    assert "60 tokens per minute" in err.value.message and err.value.retry_after_s == 31
    clock.now += 31
    await limiter.admit(who)


async def test_keys_have_separate_buckets():
    limiter = RateLimiter(MemoryBuckets(Clock()))
    a, b = Principal("a", "inference", 1), Principal("b", "inference", 1)
    await limiter.admit(a)
    await limiter.admit(b)
    with pytest.raises(RateLimited):
        await limiter.admit(a)


def test_store_choice():
    assert make_buckets(RateLimitConfig(), None).name == "memory"
    assert make_buckets(RateLimitConfig(store="memory"), "redis://x:1").name == "memory"
    assert make_buckets(RateLimitConfig(store="redis"), None).name == "memory"


async def test_redis_buckets_match_the_memory_arithmetic(redis_server):
    buckets = RedisBuckets(redis_server.url, namespace="t:rl")
    take = Op("k", "req", 3, 0.001, 1, "take")
    try:
        first = (await buckets.run([take]))[0]
        assert first.allowed and first.level == pytest.approx(2, abs=0.01)
        await buckets.run([take])
        await buckets.run([take])
        refused = (await buckets.run([take]))[0]
        assert not refused.allowed and refused.retry_after_s > 900
        charged = (await buckets.run([Op("t", "tok", 100, 0.001, 150, "charge")]))[0]
        assert charged.level == pytest.approx(-50, abs=0.01)
        # One script, stops at the first refusal: the request bucket is not touched.
        steps = await buckets.run([Op("t", "tok", 100, 0.001, 0, "check"),
                                   Op("t", "req", 3, 0.001, 1, "take")])
        assert len(steps) == 1 and not steps[0].allowed
        assert await buckets._redis.hget("t:rl:{t}:req", "level") is None
    finally:
        await buckets.close()


async def test_memory_and_redis_agree_on_a_sequence(redis_server):
    memory, redis_buckets = MemoryBuckets(Clock()), RedisBuckets(redis_server.url)
    ops = [[Op("s", "tok", 50, 0.001, 0, "check"), Op("s", "req", 2, 0.001, 1, "take")],
           [Op("s", "tok", 50, 0.001, 70, "charge")],
           [Op("s", "tok", 50, 0.001, 0, "check"), Op("s", "req", 2, 0.001, 1, "take")]]
    try:
        for batch in ops:
            a, b = await memory.run(batch), await redis_buckets.run(batch)
            assert [s.allowed for s in a] == [s.allowed for s in b]
            assert [s.level for s in a] == pytest.approx([s.level for s in b], abs=0.01)
    finally:
        await redis_buckets.close()


async def test_two_routers_share_redis_buckets(redis_server):
    one, two = (RateLimiter(RedisBuckets(redis_server.url)) for _ in range(2))
    who = Principal("shared", "inference", requests_per_min=2)
    try:
        await one.admit(who)
        await two.admit(who)
        with pytest.raises(RateLimited):
            await one.admit(who)
    finally:
        await one.close()
        await two.close()


async def test_redis_down_falls_back_to_memory_then_recovers(redis_server):
    clock = Clock()
    buckets = RedisBuckets(redis_server.url, retry_after_failure_s=1.0, clock=clock)
    limiter = RateLimiter(buckets)
    who = Principal("app", "inference", requests_per_min=1)
    try:
        redis_server.kill()
        await limiter.admit(who)  # served by memory buckets, not an error
        assert buckets.errors_total == 1 and buckets.degraded
        with pytest.raises(RateLimited):  # limits still hold while Redis is down
            await limiter.admit(who)
        redis_server.start()
        clock.now += 1.5
        await limiter.admit(who)  # Redis again: its bucket for the key is fresh
        assert not buckets.degraded and buckets.errors_total == 1
    finally:
        await limiter.close()
