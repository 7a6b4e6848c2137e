"""A streaming load generator for OpenAI-compatible servers (closed loop and Poisson).

Every request streams (`stream_options.include_usage`), so TTFT and time per output token
are measured on the client exactly the same way for every system under test.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import httpx

from tierserve.bench.stats import summary


def fresh_prompts(prompts: list[str], count: int) -> list[str]:
    """`count` prompts, each opened by a tag no earlier request carried (all tags the same
    length). Every system under test keeps a prefix cache, and a benchmark sends the same
    dataset to the same servers one run after another: untagged, a later run would find
    its prompts cached by an earlier one (bare-again after bare, auto after pinned) and
    look faster."""
    run = uuid.uuid4().hex[:8]
    return [f"[{run}-{i:04d}] {prompts[i % len(prompts)]}" for i in range(count)]


def rotated(items: list, shift: int) -> list:
    """`items` starting at index `shift` (mod its length), wrapping around: which system
    goes first changes from one round or prompt to the next."""
    shift %= len(items)
    return items[shift:] + items[:shift]


@dataclass
class RequestResult:
    ok: bool
    ttft_s: float = 0.0
    latency_s: float = 0.0
    output_tokens: int = 0
    error: str = ""

    @property
    def tpot_s(self) -> float | None:
        if self.output_tokens < 2:
            return None
        return (self.latency_s - self.ttft_s) / (self.output_tokens - 1)


@dataclass
class RunResult:
    system: str
    concurrency: int
    wall_s: float
    results: list[RequestResult] = field(default_factory=list)

    def report(self) -> dict:
        ok = [r for r in self.results if r.ok]
        tokens = sum(r.output_tokens for r in ok)
        tpots = [t for r in ok if (t := r.tpot_s) is not None]
        return {
            "system": self.system,
            "concurrency": self.concurrency,
            "requests": len(self.results),
            "errors": len(self.results) - len(ok),
            "error_samples": [r.error for r in self.results if not r.ok][:3],
            "wall_s": self.wall_s,
            "output_tokens": tokens,
            "output_tokens_per_s": tokens / self.wall_s if self.wall_s else 0.0,
            "ttft_ms": _ms(summary([r.ttft_s for r in ok])),
            "tpot_ms": _ms(summary(tpots)),
        }


def _ms(stats: dict) -> dict:
    return {k: (v * 1e3 if k != "n" else v) for k, v in stats.items()}


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    model: str
    headers: dict = field(default_factory=dict)


async def one_request(client: httpx.AsyncClient, target: Target, prompt: str,
                      max_tokens: int) -> RequestResult:
    body = {"model": target.model, "stream": True, "max_tokens": max_tokens,
            "ignore_eos": True, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": prompt}]}
    start = time.perf_counter()
    ttft, tokens = None, 0
    try:
        async with client.stream("POST", f"{target.base_url}/v1/chat/completions", json=body,
                                 headers=target.headers) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")[:200]
                return RequestResult(False, error=f"HTTP {resp.status_code}: {text}")
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return RequestResult(False, error=str(event["error"])[:200])
                if ttft is None and event.get("choices") and event["choices"][0]["delta"].get("content"):
                    ttft = time.perf_counter() - start
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
    except (httpx.HTTPError, json.JSONDecodeError) as err:
        return RequestResult(False, error=f"{type(err).__name__}: {err}")
    latency = time.perf_counter() - start
    return RequestResult(True, ttft if ttft is not None else latency, latency, tokens)


async def closed_loop(target: Target, prompts: list[str], concurrency: int, requests: int,
                      max_tokens: int, on_done: Callable[[], None] | None = None) -> RunResult:
    """`concurrency` workers each send their next request when the previous one ends."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(prompts[i % len(prompts)])
    results: list[RequestResult] = []
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            prompt = queue.get_nowait()
            results.append(await one_request(client, target, prompt, max_tokens))
            if on_done:
                on_done()

    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return RunResult(target.name, concurrency, wall, results)


async def open_loop(target: Target, prompts: list[str], rate_per_s: float, requests: int,
                    max_tokens: int, seed: int = 0,
                    on_done: Callable[[], None] | None = None) -> RunResult:
    """Poisson arrivals at `rate_per_s`, whatever the server's speed."""
    rng = random.Random(seed)
    results: list[RequestResult] = []

    async def fire(client: httpx.AsyncClient, prompt: str) -> None:
        results.append(await one_request(client, target, prompt, max_tokens))
        if on_done:
            on_done()

    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0),
                                 limits=httpx.Limits(max_connections=1000)) as client:
        start = time.perf_counter()
        tasks = []
        for i in range(requests):
            tasks.append(asyncio.create_task(fire(client, prompts[i % len(prompts)])))
            await asyncio.sleep(rng.expovariate(rate_per_s))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    return RunResult(f"{target.name}@poisson{rate_per_s:g}", 0, wall, results)


def run_report(result: RunResult) -> dict:
    data = result.report()
    data["raw"] = [asdict(r) for r in result.results]
    return data
