"""Added time to first token, measured in pairs.

Closed-loop TTFT percentiles mix the platform's own cost with prompt length, batch
composition and the machine's drift (an A/A spread of ±100 ms here). The probe sends one
request at a time: each prompt goes to every system back to back (rotating which goes
first), and the platform's added TTFT is the median of per-prompt differences against the
baseline; the baseline against itself is the A/A control.

Every request waits `settle_s` first: a vLLM engine keeps a core busy polling for about a
second after its last request (measured here: 100% of a core for 1.0 s, then idle), so
a request sent right after another server's would share the CPU with that server's
spin, and one sent right after its own server's would find the engine awake. After the
pause every request starts from the same state: all engines quiet.
"""

from __future__ import annotations

import asyncio
import statistics

import httpx

from tierserve.bench.loadgen import Target, fresh_prompts, one_request, rotated
from tierserve.bench.stats import percentile


SETTLE_S = 1.5
"""Pause before each request: longer than an engine's post-request polling (~1 s)."""


async def paired_ttft(targets: dict[str, Target], prompts: list[str], pairs: int,
                      max_tokens: int = 2, progress=None,
                      settle_s: float = SETTLE_S) -> dict[str, list[float | None]]:
    """TTFT in ms per system and prompt (None where the request failed)."""
    names = list(targets)
    ttft: dict[str, list[float | None]] = {name: [] for name in names}
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as client:
        for i in range(pairs):
            base = prompts[i % len(prompts)]
            for name in rotated(names, i):
                [prompt] = fresh_prompts([base], 1)  # no system finds it in its cache
                await asyncio.sleep(settle_s)
                result = await one_request(client, targets[name], prompt, max_tokens)
                ttft[name].append(result.ttft_s * 1e3 if result.ok else None)
                if progress:
                    progress()
    return ttft


def paired_report(ttft: dict[str, list[float | None]], baseline: str, control: str) -> dict:
    """Per system: median TTFT, and the per-prompt difference to `baseline` (median and
    interquartile range); `control` is the baseline's second run, the A/A (pure)."""
    out: dict = {}
    for name, values in ttft.items():
        ok = [v for v in values if v is not None]
        row = {"ttft_p50_ms": statistics.median(ok) if ok else None,
               "errors": len(values) - len(ok)}
        if name != baseline:
            diffs = [v - b for v, b in zip(values, ttft[baseline])
                     if v is not None and b is not None]
            row["added_ms"] = {"median": statistics.median(diffs) if diffs else None,
                               "p25": percentile(diffs, 25), "p75": percentile(diffs, 75),
                               "pairs": len(diffs)}
        out["aa_control" if name == control else name] = row
    return out
