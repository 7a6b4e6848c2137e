"""The router ingress deployment: a plain class; `platform.app` applies Serve options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierserve.config import TierServeConfig, parse_config
from tierserve.context.conversations import ConversationService
from tierserve.context.factory import make_store
from tierserve.context.tokens import WordTokenCounter, counter_pool
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import HandleTierClient


def build_conversations(config: TierServeConfig) -> ConversationService:
    """The context store from config, and each variant's own tokenizer for its window."""
    variants = [v for _, v in config.variants()]
    tokenizers = {
        v.name: config.resolve_model(v.tokenizer or v.model) for v in variants if v.engine == "vllm"
    }
    counters = {**{v.name: WordTokenCounter() for v in variants}, **counter_pool(tokenizers)}
    max_len = {v.name: v.max_model_len for v in variants}
    return ConversationService(make_store(config.context), counters, max_len, config.context)


class RouterIngress:
    """Holds one RouterService; Ray Serve asks it for its ASGI app after construction."""

    def __init__(self, config: dict, handles: Mapping[str, Any]):
        parsed = parse_config(config)
        self.service = RouterService(parsed, HandleTierClient(handles), build_conversations(parsed))

    def __serve_build_asgi_app__(self):
        return create_app(self.service)
