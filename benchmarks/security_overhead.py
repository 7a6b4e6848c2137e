"""What API-key authentication and rate limiting add to the router path (issue 11).

The whole router path runs in-process over FakeEngine tiers (no Ray, no vLLM), so the only
differences between the configurations are the security gate's calls. Configurations
alternate in every round; `off` runs twice (A/A control):
  off         security.auth: disabled (no key check, no limiter)
  keys        auth required: one SHA-256 + dict probe; rate limits in memory buckets
              (a token-bucket check and a request take before, a token charge after)
  keys_redis  the same with the buckets in a local redis-server (three Lua calls)
Measured per request: the HTTP path (ASGI app, non-streaming, answer_tokens tokens).

    python benchmarks/security_overhead.py [--rounds 7] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tierserve.bench.fake_tiers import started_fake_tiers
from tierserve.config import parse_config
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.security.keys import generate_key, key_entry

RESULTS = Path(__file__).with_name("results") / "security_overhead.json"
CONFIGS = ("off", "off_again", "keys", "keys_redis")
KEY = generate_key()


def config_for(mode: str, redis_url: str, audit: str):
    security = {"auth": "disabled"}
    if mode.startswith("keys"):
        security = {"auth": "required", "audit": {"path": audit},
                    "api_keys": [key_entry("bench", "inference", KEY).model_dump()],
                    "rate_limits": {"requests_per_min": 10**9, "tokens_per_min": 10**12,
                                    "store": "redis" if mode == "keys_redis" else "memory"}}
    return parse_config({
        "context": {"redis_url": redis_url, "store": "memory"}, "security": security,
        "tiers": [{"id": t, "variants": [{"name": f"fake-{t}", "model": "/none",
                                          "precision": "fp32", "max_model_len": 4096,
                                          "engine": "fake"}]} for t in ("7b", "33b", "236b")]})


async def build(mode: str, answer_tokens: int, redis_url: str, audit: str):
    config = config_for(mode, redis_url, audit)
    tiers = await started_fake_tiers(config, answer_tokens)
    return create_app(RouterService(config, LocalTierClient(tiers)))


async def one_round(app, requests: int) -> list[float]:
    body = {"model": "7b", "messages": [{"role": "user", "content": "What is the capital?"}]}
    headers = {"authorization": f"Bearer {KEY}"}
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:
        for _ in range(20):  # warm-up
            await client.post("/v1/chat/completions", json=body, headers=headers)
        for _ in range(requests):
            begin = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=body, headers=headers)
            out.append(time.perf_counter() - begin)
            assert r.status_code == 200, r.text
    return out


async def main(rounds: int, requests: int, answer_tokens: int) -> dict:
    from tests.fixtures.redis_server import start_redis

    workdir = Path(tempfile.mkdtemp(prefix="tierserve-bench-sec-"))
    redis = start_redis(workdir)
    try:
        apps = {m: await build(m, answer_tokens, redis.url, str(workdir / f"{m}.jsonl"))
                for m in CONFIGS}
        medians = {m: [] for m in CONFIGS}
        for _ in range(rounds):
            for mode in CONFIGS:
                samples = await one_round(apps[mode], requests)
                medians[mode].append(statistics.median(samples) * 1e3)
    finally:
        redis.stop()
    return summarize(medians, rounds, requests, answer_tokens)


def summarize(medians: dict[str, list[float]], rounds: int, requests: int,
              answer_tokens: int) -> dict:
    def block(values):
        return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
                "max": round(max(values), 4), "rounds": [round(v, 4) for v in values]}

    result = {"machine": "2 vCPU AMD EPYC (AVX2), 24 GiB, Python 3.11", "rounds": rounds,
              "requests_per_round": requests, "answer_tokens": answer_tokens,
              "per_request_ms": {m: block(v) for m, v in medians.items()}, "ratio_to_off": {},
              "added_us": {}}
    for mode in CONFIGS[1:]:
        ratios = [a / b for a, b in zip(medians[mode], medians["off"])]
        result["ratio_to_off"][mode] = block(ratios)
        result["added_us"][mode] = round(
            (statistics.median(medians[mode]) - statistics.median(medians["off"])) * 1e3, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--answer-tokens", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(main(args.rounds, args.requests, args.answer_tokens))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("per_request_ms", "ratio_to_off", "added_us")},
                     indent=1))
