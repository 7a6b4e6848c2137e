"""In-memory context store: the default without REDIS_URL (one router replica's memory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from tierserve.context.store import Conversation, ConversationKey, Turn


class _Entry:
    __slots__ = ("turns", "system", "seq", "expires_at", "replicas")

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.system: str | None = None
        self.seq = 0
        self.expires_at = 0.0
        self.replicas: dict[str, str] = {}


class MemoryContextStore:
    name = "memory"

    def __init__(self, max_turns: int, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self._clock = clock
        self._wall = wall
        self._data: dict[ConversationKey, _Entry] = {}
        self._lock = asyncio.Lock()

    def _live(self, key: ConversationKey) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del self._data[key]
            return None
        return entry

    async def load(self, key: ConversationKey) -> Conversation:
        entry = self._live(key)
        if entry is None:
            return Conversation(key)
        return Conversation(key, tuple(entry.turns), entry.system)

    async def append(self, key: ConversationKey, turns: list[Turn], system: str | None = None) -> int:
        async with self._lock:
            entry = self._live(key) or self._data.setdefault(key, _Entry())
            now = self._wall()
            for turn in turns:
                entry.seq += 1
                entry.turns.append(replace(turn, seq=entry.seq, created_at=now))
            del entry.turns[: max(0, len(entry.turns) - self.max_turns)]
            if system is not None:
                entry.system = system
            entry.expires_at = self._clock() + self.ttl_s
            return entry.seq

    async def delete(self, key: ConversationKey) -> bool:
        return self._data.pop(key, None) is not None

    async def set_replica(self, key: ConversationKey, deployment: str, replica: str) -> None:
        entry = self._live(key) or self._data.setdefault(key, _Entry())
        entry.replicas[deployment] = replica
        entry.expires_at = max(entry.expires_at, self._clock() + self.ttl_s)

    async def get_replica(self, key: ConversationKey, deployment: str) -> str | None:
        entry = self._live(key)
        return entry.replicas.get(deployment) if entry else None

    async def close(self) -> None:
        self._data.clear()
