"""PNG plots of benchmark results (matplotlib, headless)."""

from __future__ import annotations

import statistics
from pathlib import Path

SYSTEMS = (("bare", "bare vLLM"), ("pinned", "platform, model pinned"), ("auto", "platform, auto"))


def _median(rounds: list[dict], system: str, path: tuple[str, ...]) -> float:
    values = []
    for r in rounds:
        value = r[system]
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def plot_serve(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(result["concurrency"], key=int)
    xs = [int(c) for c in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in SYSTEMS:
        rounds = [result["concurrency"][c]["rounds"] for c in levels]
        left.plot(xs, [_median(r, key, ("output_tokens_per_s",)) for r in rounds], "o-", label=label)
        right.plot(xs, [_median(r, key, ("ttft_ms", "p50")) for r in rounds], "o-", label=label)
    left.set(xlabel="concurrency", ylabel="output tokens/s (median of rounds)",
             title="Throughput", xscale="log", xticks=xs)
    right.set(xlabel="concurrency", ylabel="TTFT p50, ms (median of rounds)",
              title="Time to first token", xscale="log", xticks=xs)
    for ax in (left, right):
        ax.set_xticklabels([str(x) for x in xs])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("tierserve vs bare vLLM, same engine (SmolLM2-135M fp32, 2 CPU cores)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
