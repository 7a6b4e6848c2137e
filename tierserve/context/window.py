"""The sliding context window (pure): fit a conversation into one model's window.

Token counts come from the CHOSEN model's tokenizer (a TokenCounter); the window keeps
the system prompt and the new messages, and drops the oldest stored turns, whole, until
prompt + reserved completion tokens fit. A message is never cut in half.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tierserve.errors import ContextLengthExceeded

CountTokens = Callable[[dict], int]
"""Tokens one chat message costs in a model's prompt, template markers included."""


@dataclass(frozen=True)
class Window:
    messages: list[dict]
    dropped_turns: int
    prompt_tokens: int


def _first_kept(history_costs: list[int], history: list[dict], budget: int) -> int:
    """Index of the oldest history message that fits, never starting on an assistant turn."""
    used, start = 0, len(history)
    for i in range(len(history) - 1, -1, -1):
        if used + history_costs[i] > budget:
            break
        used += history_costs[i]
        start = i
    while start < len(history) and history[start]["role"] == "assistant":
        start += 1
    return start


def fit_window(
    system: list[dict],
    history: list[dict],
    new: list[dict],
    count: CountTokens,
    max_model_len: int,
    reserve_tokens: int,
    overhead_tokens: int = 0,
    model: str = "",
) -> Window:
    """System prompt + the newest history that fits + the new messages."""
    fixed = sum(count(m) for m in system) + sum(count(m) for m in new) + overhead_tokens
    budget = max_model_len - reserve_tokens - fixed
    if budget < 0:
        raise ContextLengthExceeded(fixed, reserve_tokens, max_model_len, model)
    costs = [count(m) for m in history]
    start = _first_kept(costs, history, budget)
    kept = history[start:]
    return Window(system + kept + new, start, fixed + sum(costs[start:]))
