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
from dataclasses import replace

from tierserve.deployments.engine import (
    EngineBackend,
    EngineStats,
    GenerationChunk,
    GenerationRequest,
)
from tierserve.observability.tier_telemetry import TierTelemetry
from tierserve.weights.audit import default_actor
from tierserve.weights.follower import WeightsFollower
from tierserve.weights.spec import ReplicaWeightsSpec

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, dict], EngineBackend]


def vllm_engine_factory(name: str, engine_args: dict) -> EngineBackend:
    if engine_args.get("engine") == "fake":
        from tierserve.deployments.fake_engine import FakeEngine

        return FakeEngine(name, engine_args["max_model_len"],
                          token_delay_s=engine_args.get("token_delay_s", 0.0),
                          answer_tokens=engine_args.get("answer_tokens"))
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
        weights: ReplicaWeightsSpec | None = None,
    ):
        self.tier_id = tier_id
        self.variant_name = variant_name
        self.engine_args = engine_args
        self._engine_factory = engine_factory or vllm_engine_factory
        self.engine = self._engine_factory(variant_name, engine_args)
        self.weights = (WeightsFollower(weights, f"{variant_name}/{default_actor('replica')}")
                        if weights is not None else None)
        """Follows the weight store (hot reload) when the variant opted in."""
        self.started_at: float | None = None
        self.load_seconds: float | None = None
        self.replica_id: str | None = None
        """This replica's id (set by the Serve wrapper); tags the first chunk of each answer."""
        self.telemetry = TierTelemetry.disabled()
        """Spans and metrics of this replica (set up by the Serve wrapper from config)."""

    async def start(self) -> None:
        begin = time.monotonic()
        if self.weights is not None:  # start on the newest good version, if any
            path = await self.weights.initial(self.engine_args.get("model"))
            if path is not None:
                self.engine = self._engine_factory(self.variant_name,
                                                   {**self.engine_args, "model": path})
        await self.engine.start()
        if self.weights is not None:
            self.weights.attach(self.engine)
        self.started_at = time.time()
        self.load_seconds = time.monotonic() - begin
        log.info("%s ready in %.1f s (pid %d)", self.variant_name, self.load_seconds, os.getpid())

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the generation; abort it in the engine if the caller goes away."""
        completed = False
        tag = self.replica_id
        try:
            async for chunk in self.telemetry.watch(request, self.engine.generate(request)):
                if tag is not None:
                    chunk, tag = replace(chunk, replica=tag), None
                yield chunk
            completed = True
        finally:
            if not completed:
                await asyncio.shield(self.engine.abort(request.request_id))

    async def stats(self) -> EngineStats:
        stats = await self.engine.stats()
        if self.weights is None:
            return stats
        return replace(stats, extra={**stats.extra, "weights_version": self.weights.version})

    @property
    def weight_version(self) -> int | None:
        """The loaded weight version (0: the configured checkpoint); None without hot reload."""
        return self.weights.version if self.weights is not None else None

    async def publish_metrics(self) -> None:
        """Refresh this replica's gauges (queue, KV cache, weight version); runs periodically."""
        self.telemetry.publish(await self.engine.stats(), self.weight_version)

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """Ray Serve calls this on each replica; the queue-depth policy reads `queue_depth`."""
        stats = await self.engine.stats()
        return {
            "queue_depth": float(stats.queue_depth),
            "waiting": float(stats.waiting),
            "running": float(stats.running),
            "kv_cache_usage": float(stats.kv_cache_usage),
        }

    async def record_routing_stats(self) -> dict:
        """Ray Serve calls this on each replica every `stats_period_s`; the replica-aware
        request router reads queue and KV-cache usage for its balance guard and publishes
        the prefix-cache hit rate."""
        stats = await self.engine.stats()
        return {
            "replica": self.replica_id,
            "queue_depth": stats.queue_depth,
            "kv_cache_usage": float(stats.kv_cache_usage),
            "prefix_cache_queries": int(stats.extra.get("prefix_cache_queries", 0)),
            "prefix_cache_hits": int(stats.extra.get("prefix_cache_hits", 0)),
        }

    async def info(self) -> dict:
        return {
            "tier": self.tier_id,
            "variant": self.variant_name,
            "max_model_len": self.engine.max_model_len,
            "started_at": self.started_at,
            "load_seconds": self.load_seconds,
            "pid": os.getpid(),
            "weights": self.weights.status() if self.weights is not None else None,
        }

    async def check_health(self) -> None:
        await self.engine.check_health()

    async def shutdown(self) -> None:
        if self.weights is not None:
            await self.weights.stop()
        self.telemetry.close()
        await self.engine.shutdown()
