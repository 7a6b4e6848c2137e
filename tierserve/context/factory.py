"""Context stores by name (a registry, not a singleton)."""

from __future__ import annotations

from tierserve.config import ContextConfig
from tierserve.context.memory import MemoryContextStore
from tierserve.context.store import ContextStore
from tierserve.errors import ConfigError


def store_kind(config: ContextConfig) -> str:
    if config.store == "auto":
        return "redis" if config.redis_url else "memory"
    return config.store


def make_store(config: ContextConfig) -> ContextStore:
    kind = store_kind(config)
    if kind == "memory":
        return MemoryContextStore(config.max_turns, config.ttl_s)
    if not config.redis_url:
        raise ConfigError("context.store is 'redis' but no redis_url / REDIS_URL is set")
    from tierserve.context.redis_store import RedisContextStore

    return RedisContextStore(
        config.redis_url, config.max_turns, config.ttl_s,
        op_timeout_s=config.op_timeout_s, retry_after_failure_s=config.retry_after_failure_s,
        max_connections=config.redis_max_connections,
    )
