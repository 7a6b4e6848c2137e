"""Redis context store (redis-py asyncio). Appends run as one Lua script, so concurrent
requests on a conversation never lose or reorder turns; a short circuit breaker keeps a
dead Redis from adding timeouts to every request while it reconnects on its own."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from tierserve.context.store import ContextUnavailable, Conversation, ConversationKey, Turn

log = logging.getLogger(__name__)

# KEYS: turns list, meta hash. ARGV: max_turns, ttl_s, has_system, system, turn JSON...
# Each list item is "<seq>|<json>": the sequence number is assigned inside the script.
APPEND_LUA = """
local seq = 0
for i = 5, #ARGV do
  seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  redis.call('RPUSH', KEYS[1], tostring(seq) .. '|' .. ARGV[i])
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], 'system', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return seq
"""


def _parse_turn(item: bytes | str) -> Turn:
    text = item.decode() if isinstance(item, bytes) else item
    seq, body = text.split("|", 1)
    data = json.loads(body)
    return Turn(data["role"], data["content"], int(seq), data.get("created_at", 0.0))


class RedisContextStore:
    name = "redis"

    def __init__(self, url: str, max_turns: int, ttl_s: float, op_timeout_s: float = 0.5,
                 retry_after_failure_s: float = 1.0, namespace: str = "tierserve:conv",
                 max_connections: int = 64, clock: Callable[[], float] = time.monotonic):
        import redis.asyncio as aioredis

        self.url = url
        self.max_turns = max_turns
        self.ttl_s = int(ttl_s)
        self.namespace = namespace
        self.retry_after_failure_s = retry_after_failure_s
        self.errors_total = 0
        self._clock = clock
        self._down_until = 0.0
        # A blocking pool: a burst of requests queues for a connection (bounded by the
        # operation timeout) instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=op_timeout_s,
            socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s,
            health_check_interval=5,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._append = self._redis.register_script(APPEND_LUA)

    def _keys(self, key: ConversationKey) -> tuple[str, str]:
        prefix = key.redis_prefix(self.namespace)
        return f"{prefix}:turns", f"{prefix}:meta"

    async def _call(self, what: str, coro_factory):
        if self._clock() < self._down_until:
            raise ContextUnavailable(f"context store unavailable (recent failure); {what} skipped")
        try:
            return await coro_factory()
        except Exception as err:  # any Redis/network failure: degrade, never 5xx
            self.errors_total += 1
            self._down_until = self._clock() + self.retry_after_failure_s
            log.warning("redis %s failed: %s", what, err)
            raise ContextUnavailable(f"context store unavailable: {type(err).__name__}") from None

    async def load(self, key: ConversationKey) -> Conversation:
        turns_key, meta_key = self._keys(key)

        async def run():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(turns_key, 0, -1)
                pipe.hgetall(meta_key)
                return await pipe.execute()

        items, meta = await self._call("load", run)
        system = meta.get(b"system")
        return Conversation(key, tuple(_parse_turn(i) for i in items),
                            system.decode() if system is not None else None)

    async def append(self, key: ConversationKey, turns: list[Turn], system: str | None = None) -> int:
        now = time.time()
        bodies = [json.dumps({"role": t.role, "content": t.content, "created_at": now},
                             ensure_ascii=False) for t in turns]
        args = [self.max_turns, self.ttl_s, "1" if system is not None else "0", system or "", *bodies]
        return int(await self._call("append", lambda: self._append(keys=list(self._keys(key)), args=args)))

    async def delete(self, key: ConversationKey) -> bool:
        return bool(await self._call("delete", lambda: self._redis.delete(*self._keys(key))))

    async def set_replica(self, key: ConversationKey, deployment: str, replica: str) -> None:
        _, meta_key = self._keys(key)

        async def run():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(meta_key, f"replica:{deployment}", replica)
                pipe.expire(meta_key, self.ttl_s)
                return await pipe.execute()

        await self._call("set_replica", run)

    async def get_replica(self, key: ConversationKey, deployment: str) -> str | None:
        _, meta_key = self._keys(key)
        value = await self._call("get_replica", lambda: self._redis.hget(meta_key, f"replica:{deployment}"))
        return value.decode() if value is not None else None

    async def ping(self) -> bool:
        return bool(await self._call("ping", self._redis.ping))

    async def close(self) -> None:
        await self._redis.aclose()
