"""Conversation handling for the router: load → window for the chosen model → record.

Store failures never fail a request: the request is served statelessly and the outcome
says so (the router turns it into a warning header and a metric).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tierserve.config import ContextConfig
from tierserve.context.store import ContextStore, ContextUnavailable, Conversation, ConversationKey, Turn
from tierserve.context.window import fit_window
from tierserve.errors import InvalidRequest

log = logging.getLogger(__name__)

CONVERSATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SYSTEM_ROLES = ("system",)


def check_conversation_id(value: str) -> str:
    if not CONVERSATION_ID.match(value):
        raise InvalidRequest(
            "conversation_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            param="conversation_id",
        )
    return value


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() or None if value.lower().startswith("bearer ") else None


@dataclass
class LoadedConversation:
    key: ConversationKey
    conversation: Conversation
    available: bool


@dataclass(frozen=True)
class Prepared:
    messages: list[dict]
    dropped_turns: int
    prompt_tokens: int


class ConversationService:
    def __init__(self, store: ContextStore, counters: Mapping[str, object],
                 max_model_len: Mapping[str, int], config: ContextConfig):
        self.store = store
        self.counters = dict(counters)
        self.max_model_len = dict(max_model_len)
        self.config = config
        self.degraded_total = 0

    async def load(self, key: ConversationKey) -> LoadedConversation:
        try:
            return LoadedConversation(key, await self.store.load(key), True)
        except ContextUnavailable as err:
            self.degraded_total += 1
            log.warning("serving %s statelessly: %s", key.conversation_id, err.message)
            return LoadedConversation(key, Conversation(key), False)

    @staticmethod
    def split(messages: list[dict], stored: Conversation) -> tuple[list[dict], list[dict], list[dict]]:
        """(system, history, new): the request's system prompt wins over the stored one."""
        system = [m for m in messages if m["role"] in SYSTEM_ROLES]
        new = [m for m in messages if m["role"] not in SYSTEM_ROLES]
        if not system and stored.system is not None:
            system = [{"role": "system", "content": stored.system}]
        history = [t.as_message() for t in stored.turns]
        return system, history, new

    def prepare(self, variant: str, system: list[dict], history: list[dict], new: list[dict],
                max_tokens: int | None) -> Prepared:
        counter = self.counters[variant]
        window_len = self.max_model_len[variant]
        # Without max_tokens, keep room for an answer but never more than a quarter window.
        reserve = max_tokens or min(self.config.default_reserve_tokens, window_len // 4)
        window = fit_window(
            system, history, new, counter.count, window_len,
            reserve_tokens=reserve,
            overhead_tokens=counter.overhead(bool(system)) + self.config.window_margin_tokens,
            model=variant,
        )
        return Prepared(window.messages, window.dropped_turns, window.prompt_tokens)

    async def record(self, key: ConversationKey, request_messages: list[dict], answer: str) -> bool:
        """Append the request's new turns and the answer atomically; False if the store is down."""
        system = next((m["content"] for m in request_messages if m["role"] in SYSTEM_ROLES), None)
        turns = [Turn(m["role"], m["content"]) for m in request_messages
                 if m["role"] not in SYSTEM_ROLES]
        turns.append(Turn("assistant", answer))
        try:
            await self.store.append(key, turns, system)
            return True
        except ContextUnavailable as err:
            self.degraded_total += 1
            log.warning("turn of %s not stored: %s", key.conversation_id, err.message)
            return False
