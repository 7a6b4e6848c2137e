"""A router and FakeEngine tiers in one process, each with its own tracer (as in separate
replica processes) exporting to one in-memory exporter, and in-memory metrics."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tierserve.config import ObservabilityConfig
from tierserve.observability import MemoryMetrics, RouterObserver, TierTelemetry, setup_tracing
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient


@pytest.fixture
def spans():
    return InMemorySpanExporter()


@pytest.fixture
def metrics():
    return MemoryMetrics()


def traced_stack(config, tiers, conversations, spans, metrics, observability=None):
    settings = observability or ObservabilityConfig()
    for tier, variant in config.variants():
        tiers[variant.name].telemetry = TierTelemetry(
            tier.id, variant.name, f"{variant.name}-r1",
            setup_tracing(settings, "tier", exporter=spans), metrics)
    observer = RouterObserver(setup_tracing(settings, "router", exporter=spans), metrics,
                              request_log=True)
    return RouterService(config, LocalTierClient(tiers), conversations, observer=observer)


@pytest.fixture
async def traced(config, tiers, conversations, spans, metrics):
    service = traced_stack(config, tiers, conversations, spans, metrics)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
