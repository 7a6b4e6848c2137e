"""The tier deployment: one replica of one variant, serving one engine.

A plain class; `tierserve.platform.app` applies the Ray Serve options. The engine is
injected through `engine_factory` so unit tests run it with the FakeEngine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

from tierserve.deployments.engine import (
    EngineBackend,
    EngineStats,
    GenerationChunk,
    GenerationRequest,
)

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, dict], EngineBackend]


def vllm_engine_factory(name: str, engine_args: dict) -> EngineBackend:
    from tierserve.deployments.vllm_engine import VLLMEngine

    return VLLMEngine(name, engine_args)


class TierDeployment:
    """Serves one variant of one tier. Constructed once per replica."""

    def __init__(
        self,
        tier_id: str,
        variant_name: str,
        engine_args: dict,
        engine_factory: EngineFactory | None = None,
    ):
        self.tier_id = tier_id
        self.variant_name = variant_name
        self.engine_args = engine_args
        self.engine = (engine_factory or vllm_engine_factory)(variant_name, engine_args)
        self.started_at: float | None = None
        self.load_seconds: float | None = None

    async def start(self) -> None:
        begin = time.monotonic()
        await self.engine.start()
        self.started_at = time.time()
        self.load_seconds = time.monotonic() - begin
        log.info("%s ready in %.1f s (pid %d)", self.variant_name, self.load_seconds, os.getpid())

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the generation; abort it in the engine if the caller goes away."""
        completed = False
        try:
            async for chunk in self.engine.generate(request):
                yield chunk
            completed = True
        finally:
            if not completed:
                await asyncio.shield(self.engine.abort(request.request_id))

    async def stats(self) -> EngineStats:
        return await self.engine.stats()

    async def info(self) -> dict:
        return {
            "tier": self.tier_id,
            "variant": self.variant_name,
            "max_model_len": self.engine.max_model_len,
            "started_at": self.started_at,
            "load_seconds": self.load_seconds,
            "pid": os.getpid(),
        }

    async def check_health(self) -> None:
        await self.engine.check_health()

    async def shutdown(self) -> None:
        await self.engine.shutdown()
