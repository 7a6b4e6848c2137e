"""What a tier's request router needs to choose a replica, filled in by the router service:
the conversation key and the prompt's prefix fingerprint (no Ray).

The fingerprint is computed with the variant's own tokenizer on the same chat-templated
text its engine will see, and only for variants whose policy uses it and that can have
more than one replica, so single-replica tiers pay nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from tierserve.config import ReplicaRoutingConfig, TierServeConfig
from tierserve.deployments.engine import GenerationRequest
from tierserve.router.prefix_index import block_hashes
from tierserve.router.replica_scoring import ScoringParams

log = logging.getLogger(__name__)

CHARS_PER_TOKEN_BOUND = 8
"""Text cut before tokenizing: prefix_max_tokens tokens never need more characters than this."""


def load_hf_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


class ReplicaHints:
    def __init__(self, config: TierServeConfig,
                 load_tokenizer: Callable[[str], object] = load_hf_tokenizer):
        self._routing: dict[str, ReplicaRoutingConfig] = {}
        self._paths: dict[str, str] = {}
        for _, variant in config.variants():
            if variant.scaling.max_replicas > 1:
                self._routing[variant.name] = variant.replica_routing
            self._paths[variant.name] = config.resolve_model(variant.tokenizer or variant.model)
        self._load_tokenizer = load_tokenizer
        self._tokenizers: dict[str, object | None] = {}

    def _tokenizer(self, variant: str):
        path = self._paths[variant]
        if path not in self._tokenizers:
            try:
                self._tokenizers[path] = self._load_tokenizer(path)
            except Exception as err:  # a missing tokenizer only costs prefix awareness
                log.warning("no prefix fingerprints for %s: cannot load tokenizer %s: %s",
                            variant, path, err)
                self._tokenizers[path] = None
        return self._tokenizers[path]

    def fingerprint(self, variant: str, request: GenerationRequest) -> tuple[int, ...]:
        routing = self._routing.get(variant)
        tokenizer = self._tokenizer(variant) if routing is not None else None
        if tokenizer is None:
            return ()
        if request.messages is not None:
            try:
                text = tokenizer.apply_chat_template(
                    list(request.messages), add_generation_prompt=True, tokenize=False)
            except Exception:  # the engine reports template errors to the client
                return ()
        else:
            text = request.prompt or ""
        limit = routing.prefix_max_tokens * CHARS_PER_TOKEN_BOUND
        ids = tokenizer.encode(text[:limit], add_special_tokens=False)
        # A cut through the text may tokenize its last word differently; it matters only
        # when that last token is among the ones kept, and then its block is dropped.
        uncertain_tail = len(text) > limit and len(ids) <= routing.prefix_max_tokens
        blocks = block_hashes(ids[: routing.prefix_max_tokens], routing.prefix_block_tokens)
        return blocks[:-1] if uncertain_tail else blocks

    def fill(self, variant: str, request: GenerationRequest,
             conversation: str | None = None) -> GenerationRequest:
        """`request` with the hints `variant`'s replica routing uses (unchanged if none)."""
        routing = self._routing.get(variant)
        if routing is None:
            return request
        params = ScoringParams.from_config(routing, request.routing_policy)
        blocks = self.fingerprint(variant, request) if params.uses_prefix else ()
        keep = conversation if params.uses_affinity else None
        if not blocks and keep is None:
            return request
        return replace(request, conversation=keep, prefix_blocks=blocks)
