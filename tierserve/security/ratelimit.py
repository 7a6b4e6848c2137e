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


@dataclass(frozen=True)
class Op:
    """One operation on one key's bucket (`kind`: 'req' or 'tok')."""

    owner: str
    kind: str
    capacity: float
    per_s: float
    cost: float
    mode: Mode

    @property
    def ttl_s(self) -> int:
        return max(1, math.ceil(2 * self.capacity / self.per_s))  # -capacity back to full


# KEYS: one bucket hash per op. ARGV: per op capacity, per_s, cost, mode, ttl_s. Runs the
# ops in order, atomically, and stops at the first refusal: the same arithmetic as
# bucket_step, on Redis's clock. Floats travel as strings (Lua numbers are truncated).
BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i = 1, #KEYS do
  local a = (i - 1) * 5
  local cap, per_s = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cost, mode = tonumber(ARGV[a + 3]), ARGV[a + 4]
  local s = redis.call('HMGET', KEYS[i], 'level', 'at')
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
  redis.call('HSET', KEYS[i], 'level', tostring(level), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], ARGV[a + 5])
  table.insert(out, allowed)
  table.insert(out, tostring(wait))
  table.insert(out, tostring(level))
  if allowed == 0 then break end
end
return out
"""


class BucketStore(Protocol):
    name: str

    async def run(self, ops: list[Op]) -> list[Step]:
        """Apply `ops` in order, atomically; stop after the first refused one."""

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process (one router replica); bounded by the number of keys."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._state: dict[tuple[str, str], tuple[float, float]] = {}

    async def run(self, ops: list[Op]) -> list[Step]:
        now, steps = self._clock(), []
        for op in ops:
            level, at = self._state.get((op.owner, op.kind), (None, None))
            step = bucket_step(level, at, now, op.capacity, op.per_s, op.cost, op.mode)
            self._state[(op.owner, op.kind)] = (step.level, now)
            steps.append(step)
            if not step.allowed:
                break
        return steps

    async def close(self) -> None:
        self._state.clear()


class RedisBuckets:
    """Buckets in Redis, shared by all router replicas; memory buckets while Redis fails.
    One round trip per `run` (an admission is a token check and a request take)."""

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

    def key(self, op: Op) -> str:
        # One hash tag per API key: its buckets share a Redis Cluster slot (one script).
        return f"{self.namespace}:{{{op.owner}}}:{op.kind}"

    async def run(self, ops: list[Op]) -> list[Step]:
        if self.degraded:
            return await self.fallback.run(ops)
        args = [v for op in ops for v in (op.capacity, op.per_s, op.cost, op.mode, op.ttl_s)]
        try:
            flat = await self._script(keys=[self.key(op) for op in ops], args=args)
        except Exception as err:  # any Redis/network failure: limit locally, never 5xx
            self.errors_total += 1
            self._down_until = self._clock() + self.retry_after_failure_s
            log.warning("rate limiter: redis failed (%s); using per-replica buckets", err)
            return await self.fallback.run(ops)
        return [Step(bool(flat[i]), float(flat[i + 1]), float(flat[i + 2]))
                for i in range(0, len(flat), 3)]

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
        """Raise RateLimited (with Retry-After) when the key is over either limit: one
        atomic round trip (the token check spends nothing, then the request is taken)."""
        tpm, rpm, who = principal.tokens_per_min, principal.requests_per_min, principal.key_id
        ops, limits = [], []
        if tpm is not None:
            ops.append(Op(who, "tok", tpm, tpm / 60, 0, "check"))
            limits.append(f"{tpm} tokens per minute")
        if rpm is not None:
            ops.append(Op(who, "req", rpm, rpm / 60, 1, "take"))
            limits.append(f"{rpm} requests per minute")
        if not ops:
            return
        steps = await self.buckets.run(ops)
        if not steps[-1].allowed:
            self._refuse(principal, limits[len(steps) - 1], steps[-1])

    async def charge(self, principal: Principal, tokens: int) -> None:
        tpm = principal.tokens_per_min
        if tpm is not None and tokens > 0:
            await self.buckets.run([Op(principal.key_id, "tok", tpm, tpm / 60, tokens,
                                       "charge")])

    def _refuse(self, principal: Principal, limit: str, step: Step) -> None:
        self.limited_total += 1
        wait = max(1, math.ceil(step.retry_after_s))
        raise RateLimited(f"Rate limit reached for key '{principal.key_id}': {limit}. "
                          f"Please try again in {wait} s.", retry_after_s=wait)

    async def close(self) -> None:
        await self.buckets.close()
