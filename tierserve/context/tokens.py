"""Per-model token counting for the context window: each variant's own tokenizer."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

_PROBE_1 = [{"role": "user", "content": "x"}]
_PROBE_3 = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
            {"role": "user", "content": "z"}]


class HFTokenCounter:
    """Counts a message as its content tokens plus the chat template's per-message markers;
    `overhead()` covers BOS, the generation prompt and any default system prompt the
    template inserts when the conversation has none (Qwen does)."""

    def __init__(self, tokenizer_path: str):
        from transformers import AutoTokenizer

        self.path = tokenizer_path
        self._tok = AutoTokenizer.from_pretrained(tokenizer_path)
        self._content = lru_cache(maxsize=65536)(self._encode_len)
        one = self._render(_PROBE_1, generation=False)
        three = self._render(_PROBE_3, generation=False)
        self.per_message = math.ceil((three - one - self._content("y") - self._content("z")) / 2)
        generated = self._render(_PROBE_1, generation=True)
        self._bare = max(0, generated - self._content("x") - self.per_message)
        with_system = self._render([{"role": "system", "content": "s"}, *_PROBE_1], generation=True)
        self._with_system = max(
            0, with_system - self._content("s") - self._content("x") - 2 * self.per_message
        )

    def _encode_len(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False))

    def _render(self, messages: list[dict], generation: bool) -> int:
        text = self._tok.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=generation)
        return self._encode_len(text)

    def count(self, message: dict) -> int:
        return self._content(message["content"]) + self.per_message

    def overhead(self, has_system: bool) -> int:
        return self._with_system if has_system else self._bare


class WordTokenCounter:
    """Whitespace 'tokens' (matches the FakeEngine) for unit tests."""

    def overhead(self, has_system: bool) -> int:
        return 0

    def count(self, message: dict) -> int:
        return len(f"{message['role']}: {message['content']}".split())


def counter_pool(paths: dict[str, str], factory: Callable[[str], object] = HFTokenCounter) -> dict:
    """One counter per variant, sharing tokenizers between variants with the same path."""
    by_path = {path: factory(path) for path in sorted(set(paths.values()))}
    return {variant: by_path[path] for variant, path in paths.items()}
