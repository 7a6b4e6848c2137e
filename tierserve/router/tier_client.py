"""How the router reaches tier deployments: Ray Serve handles in production, engines in
unit tests. Both stream GenerationChunks; neither module imports Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from tierserve.deployments.engine import GenerationChunk, GenerationRequest


class TierClient(Protocol):
    def stream(self, variant: str, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Chunks of one generation on `variant`; closing the iterator cancels it."""

    async def stats(self, variant: str) -> Any: ...


class HandleTierClient:
    """Calls tier deployments through Ray Serve DeploymentHandles (duck-typed)."""

    def __init__(self, handles: Mapping[str, Any]):
        self._streams = {name: h.options(stream=True) for name, h in handles.items()}
        self._handles = dict(handles)

    async def stream(
        self, variant: str, request: GenerationRequest
    ) -> AsyncIterator[GenerationChunk]:
        response = self._streams[variant].generate.remote(request)
        done = False
        try:
            async for chunk in response:
                yield chunk
            done = True
        finally:
            if not done:
                response.cancel()

    async def stats(self, variant: str) -> Any:
        return await self._handles[variant].stats.remote()


class LocalTierClient:
    """Calls tier objects in this process (unit tests, benchmarks of the router alone)."""

    def __init__(self, tiers: Mapping[str, Any]):
        self._tiers = dict(tiers)

    def stream(self, variant: str, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        return self._tiers[variant].generate(request)

    async def stats(self, variant: str) -> Any:
        return await self._tiers[variant].stats()
