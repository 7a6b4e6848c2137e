"""Where a conversation was served last, per deployment (no Ray).

With Redis the record lives beside the conversation (`replica:<deployment>` in its meta
hash, same TTL), so every router replica agrees and the router keeps nothing locally.
Without Redis each router keeps a bounded LRU of its own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from tierserve.config import ContextConfig, ReplicaRoutingConfig
from tierserve.context.factory import make_store, store_kind
from tierserve.context.store import ContextStore, ConversationKey


def conversation_token(key: ConversationKey) -> str:
    """The opaque string a GenerationRequest carries; owners never contain ':'."""
    return f"{key.owner}:{key.conversation_id}"


def parse_conversation_token(token: str) -> ConversationKey:
    owner, sep, conversation_id = token.partition(":")
    if not sep or not owner or not conversation_id:
        raise ValueError(f"not a conversation token: {token!r}")
    return ConversationKey(owner, conversation_id)


class AffinityStore(Protocol):
    async def lookup(self, conversation: str) -> str | None:
        """The replica that served `conversation` last; raise ContextUnavailable on failure."""

    async def remember(self, conversation: str, replica: str) -> None: ...

    async def close(self) -> None: ...


class StoreAffinity:
    """Affinity records in the context store (Redis in production)."""

    def __init__(self, store: ContextStore, deployment: str):
        self.store = store
        self.deployment = deployment

    async def lookup(self, conversation: str) -> str | None:
        return await self.store.get_replica(parse_conversation_token(conversation), self.deployment)

    async def remember(self, conversation: str, replica: str) -> None:
        key = parse_conversation_token(conversation)
        await self.store.set_replica(key, self.deployment, replica)

    async def close(self) -> None:
        await self.store.close()


class LocalAffinity:
    """A bounded in-process table: least recently used conversations go first, and an
    entry older than `ttl_s` is ignored."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._table: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    async def lookup(self, conversation: str) -> str | None:
        entry = self._table.get(conversation)
        if entry is None:
            return None
        if entry[1] + self.ttl_s <= self._clock():
            del self._table[conversation]
            return None
        return entry[0]

    async def remember(self, conversation: str, replica: str) -> None:
        self.put(conversation, replica)

    def put(self, conversation: str, replica: str) -> None:
        self._table.pop(conversation, None)
        self._table[conversation] = (replica, self._clock())
        while len(self._table) > self.max_entries:
            self._table.popitem(last=False)

    async def close(self) -> None:
        self._table.clear()


def make_affinity(context: ContextConfig, routing: ReplicaRoutingConfig,
                  deployment: str) -> AffinityStore:
    """Redis when the context store is Redis (all router replicas agree), else local."""
    if store_kind(context) == "redis":
        return StoreAffinity(make_store(context), deployment)
    return LocalAffinity(routing.local_affinity_max, context.ttl_s)
