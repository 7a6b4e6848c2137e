"""What tracing, metrics and request logs add to the router path (issue 10).

The whole router path runs in-process over FakeEngine tiers (no Ray, no vLLM), so the only
differences between the configurations are the observability calls. Configurations
alternate in every round; `off` runs twice (A/A control):
  off        RouterObserver.disabled(), tiers untraced (what tracing 'none' + metrics off costs)
  metrics    Ray metric instruments (ray.util.metrics, outside a Ray worker) + request log
  full       metrics + request log + tracing (BatchSpanProcessor to a JSON-lines file)
Measured per request: the HTTP path (ASGI app, non-streaming, answer_tokens tokens) and the
time to the first chunk (service.chat until it returns, i.e. TTFT inside the router).

    python benchmarks/observability_overhead.py [--rounds 7] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tierserve.bench.fake_tiers import started_fake_tiers
from tierserve.config import ObservabilityConfig, parse_config
from tierserve.context.conversations import ConversationService
from tierserve.context.memory import MemoryContextStore
from tierserve.context.tokens import WordTokenCounter
from tierserve.observability import RouterObserver, TierTelemetry, setup_tracing
from tierserve.observability.metrics import RayMetrics
from tierserve.router.http_app import create_app
from tierserve.router.protocol import ChatCompletionRequest
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient

RESULTS = Path(__file__).with_name("results") / "observability_overhead.json"
CONFIGS = ("off", "off_again", "metrics", "full")
TIERS = {"security": {"auth": "disabled"}, "tiers": [
    {"id": tier, "variants": [{"name": f"fake-{tier}", "model": "/none", "precision": "fp32",
                               "max_model_len": 4096, "engine": "fake"}]}
    for tier in ("7b", "33b", "236b")]}


async def build(mode: str, answer_tokens: int, traces: str):
    config = parse_config(TIERS)
    settings = ObservabilityConfig(exporter="file", traces_file=traces, export_delay_s=1.0)
    tracing = setup_tracing(settings, "router") if mode == "full" else None
    tier_tracing = setup_tracing(settings, "tier") if mode == "full" else None
    metered = mode in ("metrics", "full")
    tiers = await started_fake_tiers(config, answer_tokens)
    if metered:
        for tier, variant in config.variants():
            tiers[variant.name].telemetry = TierTelemetry(tier.id, variant.name, "r1",
                                                          tier_tracing, RayMetrics())
    counter = WordTokenCounter()
    conversations = ConversationService(
        MemoryContextStore(200, 3600), {v.name: counter for _, v in config.variants()},
        {v.name: 4096 for _, v in config.variants()}, config.context)
    observer = (RouterObserver(tracing, RayMetrics(), request_log=True) if metered
                else RouterObserver.disabled())
    return RouterService(config, LocalTierClient(tiers), conversations, observer=observer)


BODY = {"model": "auto", "max_tokens": 256,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]}


async def http_path(service: RouterService, n: int) -> list[float]:
    transport = httpx.ASGITransport(app=create_app(service))
    times = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(20):
            await client.post("/v1/chat/completions", json=BODY)
        for _ in range(n):
            begin = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=BODY)
            times.append(time.perf_counter() - begin)
            assert r.status_code == 200
    return times


async def first_chunk(service: RouterService, n: int) -> list[float]:
    times = []
    for i in range(n + 20):
        body = ChatCompletionRequest.model_validate(BODY)
        begin = time.perf_counter()
        started = await service.chat(body, {})
        elapsed = time.perf_counter() - begin
        async for _ in started.chunks():
            pass
        await started.complete("")
        await started.aclose()
        if i >= 20:
            times.append(elapsed)
    return times


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def main(rounds: int, requests: int, answer_tokens: int) -> dict:
    logging.getLogger("tierserve").addHandler(logging.NullHandler())
    logging.getLogger("tierserve").propagate = False  # request log lines are formatted, not printed
    traces = os.path.join(tempfile.mkdtemp(), "spans.jsonl")
    per_round = {c: {"http_us": [], "ttft_us": []} for c in CONFIGS}
    for r in range(rounds):
        order = CONFIGS if r % 2 == 0 else tuple(reversed(CONFIGS))
        for mode in order:
            service = await build("off" if mode == "off_again" else mode, answer_tokens, traces)
            http = await http_path(service, requests)
            ttft = await first_chunk(service, requests)
            per_round[mode]["http_us"].append(statistics.median(http) * 1e6)
            per_round[mode]["ttft_us"].append(statistics.median(ttft) * 1e6)
        print(f"round {r + 1}: " + ", ".join(
            f"{m} {per_round[m]['http_us'][-1]:.0f}/{per_round[m]['ttft_us'][-1]:.0f} us"
            for m in CONFIGS))
    base = per_round["off"]
    result = {"rounds": rounds, "requests_per_round": requests, "answer_tokens": answer_tokens,
              "configs": {}}
    for mode in CONFIGS:
        runs = per_round[mode]
        added_http = [a - b for a, b in zip(runs["http_us"], base["http_us"])]
        added_ttft = [a - b for a, b in zip(runs["ttft_us"], base["ttft_us"])]
        result["configs"][mode] = {
            "http_request_us": summary(runs["http_us"]),
            "first_chunk_us": summary(runs["ttft_us"]),
            "added_http_us_vs_off": summary(added_http),
            "added_first_chunk_us_vs_off": summary(added_ttft),
            "http_ratio_vs_off": summary([a / b for a, b in zip(runs["http_us"], base["http_us"])]),
        }
    spans = sum(1 for _ in open(traces)) if os.path.exists(traces) else 0
    result["spans_written"] = spans
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--answer-tokens", type=int, default=64)
    args = parser.parse_args()
    outcome = asyncio.run(main(args.rounds, args.requests, args.answer_tokens))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=2) + "\n")
    for mode, data in outcome["configs"].items():
        print(f"{mode:>10}: http {data['http_request_us']['median']:7.0f} us "
              f"(+{data['added_http_us_vs_off']['median']:5.0f}), first chunk "
              f"{data['first_chunk_us']['median']:6.0f} us "
              f"(+{data['added_first_chunk_us_vs_off']['median']:5.0f})")
    print(f"wrote {RESULTS}")
