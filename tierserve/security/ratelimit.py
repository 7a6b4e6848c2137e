"""Per-key rate limits: requests/min and tokens/min as continuously refilled token buckets.

One pure step function decides; the same arithmetic runs as a Lua script in Redis (atomic,
shared by every router replica, Redis's clock) or in this process's memory. A failing
Redis never fails a request: the limiter falls back to memory buckets for a short while
and tries Redis again.

Requests take one unit before they run. Tokens cannot be known in advance, so a request
is admitted while the key's token bucket is not in debt, and its actual prompt +
completion tokens are charged when it ends (debt is capped at one minute's allowance).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from tierserve.config import RateLimitConfig
from tierserve.errors import RateLimited
from tierserve.security.keys import Principal

log = logging.getLogger(__name__)

Mode = Literal["take", "check", "charge"]
"""take: need `cost` units and spend them; check: need a level above 0, spend nothing;
charge: spend `cost` whatever the level (down to -capacity)."""


@dataclass(frozen=True)
class Step:
    allowed: bool
    retry_after_s: float
    level: float


def bucket_step(level: float | None, at: float | None, now: float, capacity: float,
                per_s: float, cost: float, mode: Mode) -> Step:
    """One bucket operation. `level`/`at` are the stored state (None: a new, full bucket)."""
    level = capacity if level is None else level
    elapsed = max(0.0, now - (now if at is None else at))
    level = min(capacity, level + elapsed * per_s)
    if mode == "take":
        if level >= cost:
            return Step(True, 0.0, level - cost)
        return Step(False, (cost - level) / per_s, level)
    if mode == "check":
        if level > 0:
            return Step(True, 0.0, level)
        return Step(False, (1.0 - level) / per_s, level)
    return Step(True, 0.0, max(-capacity, level - cost))


# KEYS[1]: bucket hash. ARGV: capacity, per_s, cost, mode, ttl_s. Same arithmetic as
# bucket_step; floats travel as strings (Lua numbers returned to Redis are truncated).
BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap, per_s, cost, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local s = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(s[1]) or cap
local at = tonumber(s[2]) or now
level = math.min(cap, level + math.max(0, now - at) * per_s)
local allowed, wait = 1, 0
if mode == 'take' then
  if level >= cost then level = level - cost else allowed = 0; wait = (cost - level) / per_s end
elseif mode == 'check' then
  if level <= 0 then allowed = 0; wait = (1 - level) / per_s end
else
  level = math.max(-cap, level - cost)
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {allowed, tostring(wait), tostring(level)}
"""


class BucketStore(Protocol):
    name: str

    async def step(self, key: str, capacity: float, per_s: float, cost: float,
                   mode: Mode) -> Step: ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process (one router replica); bounded by the number of keys."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}

    async def step(self, key: str, capacity: float, per_s: float, cost: float,
                   mode: Mode) -> Step:
        now = self._clock()
        level, at = self._state.get(key, (None, None))
        result = bucket_step(level, at, now, capacity, per_s, cost, mode)
        self._state[key] = (result.level, now)
        return result

    async def close(self) -> None:
        self._state.clear()


class RedisBuckets:
    """Buckets in Redis, shared by all router replicas; memory buckets while Redis fails."""

    name = "redis"

    def __init__(self, url: str, namespace: str = "tierserve:rl", op_timeout_s: float = 0.5,
                 retry_after_failure_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        import redis.asyncio as aioredis

        self.namespace = namespace
        self.retry_after_failure_s = retry_after_failure_s
        self.fallback = MemoryBuckets(clock)
        self.errors_total = 0
        self._clock = clock
        self._down_until = 0.0
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s)
        self._script = self._redis.register_script(BUCKET_LUA)

    @property
    def degraded(self) -> bool:
        return self._clock() < self._down_until

    async def step(self, key: str, capacity: float, per_s: float, cost: float,
                   mode: Mode) -> Step:
        if self.degraded:
            return await self.fallback.step(key, capacity, per_s, cost, mode)
        ttl = max(1, math.ceil(2 * capacity / per_s))  # refill from -capacity to full
        try:
            allowed, wait, level = await self._script(
                keys=[f"{self.namespace}:{{{key}}}"], args=[capacity, per_s, cost, mode, ttl])
        except Exception as err:  # any Redis/network failure: limit locally, never 5xx
            self.errors_total += 1
            self._down_until = self._clock() + self.retry_after_failure_s
            log.warning("rate limiter: redis failed (%s); using per-replica buckets", err)
            return await self.fallback.step(key, capacity, per_s, cost, mode)
        return Step(bool(allowed), float(wait), float(level))

    async def close(self) -> None:
        await self._redis.aclose()


def make_buckets(config: RateLimitConfig, redis_url: str | None) -> BucketStore:
    kind = config.store if config.store != "auto" else ("redis" if redis_url else "memory")
    if kind == "redis" and redis_url:
        return RedisBuckets(redis_url)
    if kind == "redis":
        log.warning("rate_limits.store is 'redis' but no Redis URL is set; using memory")
    return MemoryBuckets()


class RateLimiter:
    """Admits or refuses one key's requests and charges its tokens."""

    def __init__(self, buckets: BucketStore):
        self.buckets = buckets
        self.limited_total = 0

    async def admit(self, principal: Principal) -> None:
        """Raise RateLimited (with Retry-After) when the key is over either limit."""
        tpm, rpm = principal.tokens_per_min, principal.requests_per_min
        if tpm is not None:  # checked first: it spends nothing
            step = await self.buckets.step(f"{principal.key_id}:tok", tpm, tpm / 60, 0, "check")
            if not step.allowed:
                self._refuse(principal, f"{tpm} tokens per minute", step)
        if rpm is not None:
            step = await self.buckets.step(f"{principal.key_id}:req", rpm, rpm / 60, 1, "take")
            if not step.allowed:
                self._refuse(principal, f"{rpm} requests per minute", step)

    async def charge(self, principal: Principal, tokens: int) -> None:
        tpm = principal.tokens_per_min
        if tpm is not None and tokens > 0:
            await self.buckets.step(f"{principal.key_id}:tok", tpm, tpm / 60, tokens, "charge")

    def _refuse(self, principal: Principal, limit: str, step: Step) -> None:
        self.limited_total += 1
        wait = max(1, math.ceil(step.retry_after_s))
        raise RateLimited(f"Rate limit reached for key '{principal.key_id}': {limit}. "
                          f"Please try again in {wait} s.", retry_after_s=wait)

    async def close(self) -> None:
        await self.buckets.close()
