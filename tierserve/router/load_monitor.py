"""Background polling of each variant's engine load, for spillover decisions.

The router reads `snapshot()` (a plain dict of LoadSnapshots) and passes it to the pure
`decide()`; this class only does the I/O: every `interval_s` it asks each variant for its
EngineStats (`TierClient.stats`) and records waiting, running and KV-cache usage. A
variant that does not answer keeps its last snapshot, which goes stale and is then ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from tierserve.router.spillover import LoadSnapshot

log = logging.getLogger(__name__)


class LoadMonitor:
    def __init__(self, client, variants: Sequence[str], interval_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.variants = list(variants)
        self.interval_s = interval_s
        self.clock = clock
        self._loads: dict[str, LoadSnapshot] = {}
        self._task: asyncio.Task | None = None

    def snapshot(self) -> dict[str, LoadSnapshot]:
        return dict(self._loads)

    def ensure_started(self) -> None:
        """Start polling on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _poll(self, variant: str) -> None:
        try:
            stats = await asyncio.wait_for(self.client.stats(variant), 4 * self.interval_s)
        except Exception as err:  # a slow or failed replica must not stop the others
            log.debug("load poll of %s failed: %r", variant, err)
            return
        self._loads[variant] = LoadSnapshot(
            waiting=int(stats.waiting), running=int(stats.running),
            kv_cache_usage=float(stats.kv_cache_usage), at=self.clock(),
        )

    async def poll_once(self) -> None:
        await asyncio.gather(*(self._poll(v) for v in self.variants))

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
