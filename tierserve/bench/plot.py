"""PNG plots of benchmark results (matplotlib, headless)."""

from __future__ import annotations

import statistics
from pathlib import Path

SYSTEMS = (("bare", "bare vLLM"), ("pinned", "platform, model pinned"), ("auto", "platform, auto"),
           ("peer", "Ray Serve LLM"))
OWN_ROLES = {"bare": "bare:", "pinned": "platform:", "auto": "platform:", "peer": "ray-serve-llm:"}


def _median(rounds: list[dict], system: str, path: tuple[str, ...]) -> float:
    values = []
    for r in rounds:
        value = r[system]
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def plot_serve(result: dict, out: Path) -> bool:
    """Write the PNG; False (nothing written) when the run had no closed-loop levels."""
    levels = sorted(result["concurrency"], key=int)
    if not levels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [int(c) for c in levels]
    fig, (left, right, cpu) = plt.subplots(1, 3, figsize=(16, 4.4))
    present = result["concurrency"][levels[0]]["rounds"][0]
    for key, label in [(k, v) for k, v in SYSTEMS if k in present]:
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
    _plot_cpu(cpu, result["concurrency"][levels[-1]]["comparison"], levels[-1])
    fig.suptitle("tierserve vs bare vLLM, same engine (SmolLM2-135M fp32, 2 CPU cores)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _plot_cpu(ax, comparison: dict, level: str) -> None:
    import matplotlib.pyplot as plt

    """Stacked CPU ms per output token by process role, per system (where the time goes)."""
    table = comparison.get("cpu_ms_per_output_token")
    if not table:
        ax.set_axis_off()
        return
    systems = [key for key, _ in SYSTEMS if key in table]
    own = OWN_ROLES
    roles = sorted({r for s in systems for r in table[s] if not _foreign(r, own[s])})
    bottoms = [0.0] * len(systems)
    colors = plt.get_cmap("tab20").colors  # more roles than the default 10-colour cycle
    for index, role in enumerate(roles):
        heights = [table[s].get(role, 0.0) if not _foreign(role, own[s]) else 0.0
                   for s in systems]
        ax.bar(systems, heights, bottom=bottoms, label=role, color=colors[index % 20])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set(ylabel="CPU ms per output token (median of rounds)",
           title=f"Where the CPU goes, concurrency {level}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def _foreign(role: str, own_prefix: str) -> bool:
    """The other system's processes (idle during this system's run) are not its cost."""
    return (role.split(":")[0] in ("bare", "platform", "ray-serve-llm")
            and not role.startswith(own_prefix))
