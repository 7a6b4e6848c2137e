"""The context store seam: what the router needs to keep conversations (pure types)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from tierserve.errors import TierServeError


class ContextUnavailable(TierServeError):
    """The store cannot be reached; callers serve statelessly instead of failing."""

    status_code = 503
    error_type = "context_unavailable"


@dataclass(frozen=True)
class ConversationKey:
    """A conversation id scoped to its owner (a hash of the API key), so one client
    cannot read another's conversation."""

    owner: str
    conversation_id: str

    @classmethod
    def for_credential(cls, credential: str | None, conversation_id: str) -> ConversationKey:
        owner = hashlib.sha256((credential or "").encode()).hexdigest()[:24] if credential else "anonymous"
        return cls(owner, conversation_id)

    def redis_prefix(self, namespace: str) -> str:
        # Braces keep every key of one conversation in one Redis Cluster hash slot.
        return f"{namespace}:{{{self.owner}:{self.conversation_id}}}"


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    seq: int = 0
    created_at: float = 0.0

    def as_message(self) -> dict:
        return {"role": self.role, "content": self.content}

    def as_dict(self) -> dict:
        return {"seq": self.seq, "role": self.role, "content": self.content,
                "created_at": self.created_at}


@dataclass(frozen=True)
class Conversation:
    key: ConversationKey
    turns: tuple[Turn, ...] = ()
    system: str | None = None
    last_replica: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return bool(self.turns) or self.system is not None


class ContextStore(Protocol):
    name: str

    async def load(self, key: ConversationKey) -> Conversation:
        """The stored conversation (empty if none); raise ContextUnavailable on failure."""

    async def append(
        self, key: ConversationKey, turns: list[Turn], system: str | None = None
    ) -> int:
        """Append turns atomically, numbering them; cap, refresh TTL; return the last seq."""

    async def delete(self, key: ConversationKey) -> bool:
        """Remove the conversation; True if it existed."""

    async def set_replica(self, key: ConversationKey, deployment: str, replica: str) -> None:
        """Remember which replica of `deployment` last served the conversation."""

    async def get_replica(self, key: ConversationKey, deployment: str) -> str | None: ...

    async def close(self) -> None: ...
