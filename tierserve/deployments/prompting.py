"""Prompt-size rules shared by every engine (pure)."""

from __future__ import annotations

from tierserve.errors import ContextLengthExceeded


def check_context_length(
    prompt_tokens: int, max_tokens: int | None, max_model_len: int, model: str
) -> int:
    """The completion-token budget; raise ContextLengthExceeded when it does not fit.

    max_tokens None means "as many as the window leaves", like the OpenAI API.
    """
    room = max_model_len - prompt_tokens
    if max_tokens is None:
        if room < 1:
            raise ContextLengthExceeded(prompt_tokens, 1, max_model_len, model)
        return room
    if max_tokens > room:
        raise ContextLengthExceeded(prompt_tokens, max_tokens, max_model_len, model)
    return max_tokens
