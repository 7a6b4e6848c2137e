"""Plans as text: the explanation of a placement and the `tierserve plan` table (pure)."""

from __future__ import annotations

from tierserve.planner.gpus import GiB
from tierserve.planner.plan import Fit, Plan


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def describe_fit(plan: Plan, fit: Fit) -> str:
    """How one placement's per-GPU memory adds up under the sizing rule."""
    kind = "active weights" if plan.active_params < plan.params else "weights"
    return (
        f"TP={fit.tensor_parallel_size} x PP={fit.pipeline_parallel_size} on {fit.gpus} x "
        f"{plan.gpu.label} ({gib(plan.gpu.memory_bytes)} each): per GPU "
        f"{gib(fit.weight_bytes_per_gpu)} of {plan.precision} weights + "
        f"{gib(fit.headroom_bytes_per_gpu)} headroom (0.5 x {kind}) + "
        f"{gib(fit.min_kv_bytes_per_gpu)} KV for a {plan.max_model_len}-token sequence = "
        f"{gib(fit.need_bytes_per_gpu)}"
    )


def explain_configured(plan: Plan) -> str:
    """Why the config's own TP x PP cannot hold the model, and what the planner would do."""
    fit = plan.configured
    lines = [f"variant '{plan.deployment}' ({plan.tier}, {plan.model}): the configured "
             f"TP={fit.tensor_parallel_size} x PP={fit.pipeline_parallel_size} cannot hold it: "
             f"{fit.problem}."]
    if "GiB per GPU" in (fit.problem or ""):
        lines.append("  " + describe_fit(plan, fit) + ".")
    best = plan.recommended
    if best is None:
        lines.append(f"  No placement of up to the planner's GPU limit fits on {plan.gpu.label}.")
    else:
        lines.append(f"  The planner's placement: {best.gpus} GPU(s) as "
                     f"TP={best.tensor_parallel_size} x PP={best.pipeline_parallel_size} "
                     f"(set tensor_parallel_size/pipeline_parallel_size).")
    return "\n".join(lines)


HEADER = ("deployment", "tier", "prec", "params", "weights", "KV/token", "GPUs", "TPxPP",
          "mem/wts", "max seqs", "ctx", "config", "gpu")


def _row(plan: Plan) -> tuple[str, ...]:
    best, conf = plan.recommended, plan.configured
    mark = "ok" if conf.fits else "TOO SMALL"
    return (
        plan.deployment, plan.tier, plan.precision,
        f"{plan.params / 1e9:.1f}B" + (f" ({plan.active_params / 1e9:.1f}B act)"
                                       if plan.active_params < plan.params else ""),
        f"{plan.weight_bytes / 1e9:.1f} GB",
        f"{plan.kv_bytes_per_token / 1024:.1f} KiB",
        str(best.gpus) if best else "-",
        f"{best.tensor_parallel_size}x{best.pipeline_parallel_size}" if best else "-",
        f"{best.gpus * plan.gpu.memory_bytes / plan.weight_bytes:.2f}" if best else "-",
        str(best.max_concurrent_seqs) if best else "-",
        str(plan.max_model_len),
        f"{conf.tensor_parallel_size}x{conf.pipeline_parallel_size} {mark}",
        plan.gpu.key,
    )


def format_table(plans: list[Plan], failures: list[tuple[str, str, str]]) -> str:
    """A fixed-width table; `failures` are (deployment, tier, error) of unplannable variants."""
    rows = [HEADER] + [_row(p) for p in plans]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    for plan in plans:
        lines.extend(f"  {plan.deployment}: {note}" for note in plan.notes)
        if not plan.configured.fits:
            lines.append("  " + explain_configured(plan).replace("\n", "\n  "))
    for name, tier, error in failures:
        lines.append(f"  {name} ({tier}): not planned: {error}")
    return "\n".join(lines)
