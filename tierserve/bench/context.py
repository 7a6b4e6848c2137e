"""`tierserve bench context`: load + trim + append of a 50-turn conversation on real Redis.

Measures what a conversation adds to one request on the router: the Redis round trips
(one pipelined load, one Lua append) and the window computed with the target model's
real tokenizer.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from pathlib import Path

from tierserve.bench.stats import spread, summary
from tierserve.config import ContextConfig
from tierserve.context.conversations import ConversationService
from tierserve.context.redis_store import RedisContextStore
from tierserve.context.store import ConversationKey, Turn
from tierserve.context.tokens import HFTokenCounter


def _sentence(i: int) -> str:
    return f"Turn {i}: here is a reasonably long message about the topic, with details " * 3


async def _seed(store: RedisContextStore, key: ConversationKey, turns: int) -> None:
    await store.delete(key)
    for i in range(0, turns, 2):
        await store.append(key, [Turn("user", _sentence(i)), Turn("assistant", _sentence(i + 1))])


async def _one_request(service: ConversationService, key: ConversationKey, variant: str) -> dict:
    new = [{"role": "user", "content": "And what follows from that?"}]
    t0 = time.perf_counter()
    loaded = await service.load(key)
    t1 = time.perf_counter()
    system, history, fresh = service.split(new, loaded.conversation)
    prepared = service.prepare(variant, system, history, fresh, 128)
    t2 = time.perf_counter()
    await service.record(key, new, "An answer of moderate length. " * 4)
    t3 = time.perf_counter()
    return {"load_ms": (t1 - t0) * 1e3, "trim_ms": (t2 - t1) * 1e3, "append_ms": (t3 - t2) * 1e3,
            "total_ms": (t3 - t0) * 1e3, "kept": len(prepared.messages)}


async def run(redis_url: str, tokenizer: str, turns: int, iterations: int, rounds: int) -> dict:
    config = ContextConfig(max_turns=turns)
    store = RedisContextStore(redis_url, max_turns=turns, ttl_s=3600)
    service = ConversationService(store, {"m": HFTokenCounter(tokenizer)}, {"m": 32768}, config)
    key = ConversationKey("bench", "fifty-turns")
    per_round, samples = [], []
    for _ in range(rounds):
        await _seed(store, key, turns)
        for _ in range(20):  # warm the connection pool and the token-count cache
            await _one_request(service, key, "m")
        got = [await _one_request(service, key, "m") for _ in range(iterations)]
        samples.extend(got)
        per_round.append(summary([g["total_ms"] for g in got])["p50"])
    await store.close()
    return {
        "benchmark": "context load+trim+append",
        "turns": turns,
        "tokenizer": Path(tokenizer).name,
        "iterations_per_round": iterations,
        "total_ms": summary([s["total_ms"] for s in samples]),
        "load_ms": summary([s["load_ms"] for s in samples]),
        "trim_ms": summary([s["trim_ms"] for s in samples]),
        "append_ms": summary([s["append_ms"] for s in samples]),
        "p50_total_ms_by_round": spread(per_round),
        "kept_messages": samples[-1]["kept"],
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "target": "p50 total <= 2 ms",
    }


def main(redis_url: str, tokenizer: str, out: Path, turns=50, iterations=500, rounds=5) -> dict:
    result = asyncio.run(run(redis_url, tokenizer, turns, iterations, rounds))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result
