from __future__ import annotations

import asyncio

import httpx

from tierserve.config import parse_config
from tierserve.deployments.engine import EngineStats
from tierserve.router.http_app import create_app
from tierserve.router.load_monitor import LoadMonitor
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tests.unit.conftest import small_config


class Stats:
    def __init__(self, waiting: dict[str, int], broken: set[str] = frozenset()):
        self.waiting = waiting
        self.broken = broken

    async def stats(self, variant: str) -> EngineStats:
        if variant in self.broken:
            raise RuntimeError("replica gone")
        return EngineStats(waiting=self.waiting.get(variant, 0), running=1, kv_cache_usage=0.2)


async def test_poll_records_snapshots_and_skips_failures():
    client = Stats({"a": 5}, broken={"b"})
    monitor = LoadMonitor(client, ["a", "b"], interval_s=0.05, clock=lambda: 7.0)
    await monitor.poll_once()
    snap = monitor.snapshot()
    assert set(snap) == {"a"}
    assert (snap["a"].waiting, snap["a"].running, snap["a"].at) == (5, 1, 7.0)


async def test_background_polling_and_close():
    client = Stats({"a": 1})
    monitor = LoadMonitor(client, ["a"], interval_s=0.01)
    monitor.ensure_started()
    await asyncio.sleep(0.05)
    assert "a" in monitor.snapshot()
    await monitor.aclose()


class SaturatedLarge(LocalTierClient):
    async def stats(self, variant: str) -> EngineStats:
        waiting = 20 if variant == "large-bf16" else 0
        return EngineStats(waiting=waiting, running=4, kv_cache_usage=0.5)


async def test_router_spills_and_says_so_in_the_header(tiers):
    config = parse_config(small_config(routing={"spillover": {
        "enabled": True, "max_waiting": 8, "max_confidence": 1.0, "min_neighbour_score": 0.0}}))
    service = RouterService(config, SaturatedLarge(tiers))
    await service.loads.poll_once()
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/v1/chat/completions", json={
            "model": "auto", "max_tokens": 2,
            "messages": [{"role": "user", "content": "Prove that e is irrational."}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-tierserve-tier"] == "33b"
    assert r.headers["x-tierserve-route-reason"].endswith(";spill:236b->33b(waiting=20)")
    await service.loads.aclose()
