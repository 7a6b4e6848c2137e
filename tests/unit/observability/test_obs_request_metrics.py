"""Router and tier metrics recorded per request (in-memory backend)."""

from __future__ import annotations

import asyncio

import httpx

from tierserve.context.store import ContextUnavailable
from tierserve.deployments.engine import EngineStats, GenerationRequest, SamplingOptions
from tierserve.observability import TierTelemetry
from tierserve.observability.metrics import reason_kind


def chat(content="What is the capital of France?", **extra):
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


async def test_successful_request_metrics(traced, metrics):
    r = await traced.post("/v1/chat/completions", json=chat("tell me a long story please now"))
    usage = r.json()["usage"]
    tags = {"tier": r.headers["x-tierserve-tier"],
            "deployment": r.headers["x-tierserve-deployment"]}
    assert metrics.total("tierserve_requests", status="200", endpoint="chat.completions",
                         **tags) == 1
    assert metrics.series("tierserve_request_errors") == []
    assert metrics.total("tierserve_prompt_tokens", **tags) == usage["prompt_tokens"]
    assert metrics.total("tierserve_completion_tokens", **tags) == usage["completion_tokens"]
    assert len(metrics.series("tierserve_time_to_first_token_seconds", **tags)[0]) == 1
    assert len(metrics.series("tierserve_time_per_output_token_seconds", **tags)[0]) == 1
    assert len(metrics.series("tierserve_output_tokens_per_second", **tags)[0]) == 1
    assert len(metrics.series("tierserve_request_duration_seconds", **tags)[0]) == 1
    reason = reason_kind(r.headers["x-tierserve-route-reason"])
    assert metrics.total("tierserve_route_decisions", reason=reason, **tags) == 1
    assert metrics.total("tierserve_engine_generations", outcome="finished", **tags) == 1
    assert len(metrics.series("tierserve_engine_time_to_first_token_seconds", **tags)[0]) == 1


async def test_client_error_counts_under_its_status(traced, metrics):
    r = await traced.post("/v1/chat/completions", json={**chat(), "model": "nope"})
    assert r.status_code == 404
    assert metrics.total("tierserve_requests", status="404", tier="none") == 1
    assert metrics.total("tierserve_request_errors", status="404",
                         error_type="invalid_request_error") == 1


async def test_engine_side_rejection_is_a_400(traced, metrics):
    r = await traced.post("/v1/chat/completions",
                          json={**chat("word " * 200), "model": "small-fp32"})
    assert r.status_code == 400
    assert metrics.total("tierserve_request_errors", status="400", deployment="small-fp32") == 1
    assert metrics.total("tierserve_engine_generations", outcome="error",
                         deployment="small-fp32") == 1


async def test_store_outage_counts_context_errors(traced, metrics, conversations):
    class Down:
        name = "down"

        async def load(self, key):
            raise ContextUnavailable("down")

        async def append(self, key, turns, system=None):
            raise ContextUnavailable("down")

    conversations.store = Down()
    r = await traced.post("/v1/chat/completions", json=chat(conversation_id="c9"))
    assert r.status_code == 200
    assert metrics.total("tierserve_context_store_errors", operation="load") == 1
    assert metrics.total("tierserve_context_store_errors", operation="record") == 1


async def test_abandoned_stream_counts_as_499(config, tiers, conversations, spans, metrics):
    """What http_app does when the client goes away: close the stream unfinished."""
    from tests.unit.observability.conftest import traced_stack
    from tierserve.router.protocol import ChatCompletionRequest

    service = traced_stack(config, tiers, conversations, spans, metrics)
    body = ChatCompletionRequest.model_validate(
        {**chat("one two three four five six"), "model": "medium-fp32", "stream": True})
    started = await service.chat(body, {})
    async for _ in started.chunks():
        break
    await started.aclose()
    assert metrics.total("tierserve_requests", status="499", deployment="medium-fp32") == 1
    assert metrics.series("tierserve_request_errors") == []
    root = next(s for s in spans.get_finished_spans() if s.name == "router.request")
    assert root.attributes["http.response.status_code"] == 499


def test_reason_kind_strips_payloads():
    assert reason_kind("rules:simple(lookup,tokens=5);latency:critical") == \
        "rules:simple;latency:critical"
    assert reason_kind("pinned:variant") == "pinned:variant"
    assert reason_kind("rules:ordinary(turns=2,code);fallback:33b->7b") == \
        "rules:ordinary;fallback:33b->7b"


async def test_tier_gauges_from_engine_stats(tiers, metrics):
    dep = tiers["small-fp32"]
    dep.telemetry = TierTelemetry("7b", "small-fp32", "r1", backend=metrics, interval_s=0.01)
    dep.engine.running.update({"a", "b"})
    dep.telemetry.start_publishing(dep.publish_metrics)
    await asyncio.sleep(0.05)
    dep.telemetry.close()
    tags = {"deployment": "small-fp32", "replica": "r1"}
    assert metrics.last("tierserve_queue_depth_requests", **tags) == 2
    assert metrics.last("tierserve_queue_running_requests", **tags) == 2
    assert metrics.last("tierserve_kv_cache_usage_ratio", **tags) == 0
    assert metrics.last("tierserve_weight_version", **tags) == 0  # no hot reload
    dep.telemetry.publish(EngineStats(waiting=5), weight_version=3)
    assert metrics.last("tierserve_weight_version", **tags) == 3
    assert metrics.last("tierserve_queue_waiting_requests", **tags) == 5


async def test_untraced_tier_passes_the_stream_through(tiers):
    dep = tiers["small-fp32"]
    stream = dep.engine.generate(GenerationRequest("x", SamplingOptions(), prompt="hi"))
    assert dep.telemetry.watch(None, stream) is stream
    await stream.aclose()


async def test_no_observer_means_no_trace_context(config, tiers, conversations):
    from tierserve.router.http_app import create_app
    from tierserve.router.service import RouterService
    from tierserve.router.tier_client import LocalTierClient

    seen = []
    dep = tiers["small-fp32"]
    original = dep.generate

    async def spy(request):
        seen.append(request.trace_context)
        async for chunk in original(request):
            yield chunk

    dep.generate = spy
    app = create_app(RouterService(config, LocalTierClient(tiers), conversations))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/v1/chat/completions", json={**chat(), "model": "small-fp32"})
    assert r.status_code == 200 and seen == [None]
