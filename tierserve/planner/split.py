"""Which tensor x pipeline splits are valid for a model, and which one the planner prefers.

Dense models: tensor parallelism inside a node (fastest per token), pipeline stages only
across nodes. MLA models cache one latent per token per layer that tensor parallelism
cannot split, so every TP rank keeps a full copy of its layers' cache; pipeline stages do
split it (by layer). For them the planner stops TP at `mla_max_tensor_parallel` (4) and
puts further GPUs into pipeline stages: DeepSeek-V2 on 8 GPUs is TP=4 x PP=2, which holds
twice the KV cache of TP=8 at a modest cost in per-token latency.
"""

from __future__ import annotations

from tierserve.planner.architecture import Architecture
from tierserve.planner.gpus import GpuSpec


def split_problem(arch: Architecture, tp: int, pp: int, gpu: GpuSpec | None) -> str | None:
    """Why vLLM cannot run `arch` as TP=tp x PP=pp, or None when it can."""
    if arch.num_heads % tp:
        return f"TP={tp} does not divide the {arch.num_heads} attention heads"
    kv = arch.num_kv_heads
    if not arch.uses_mla and kv % tp and tp % kv:
        return f"TP={tp} and the {kv} KV heads do not divide one another"
    if pp > arch.num_layers:
        return f"PP={pp} exceeds the {arch.num_layers} layers"
    if gpu is not None and tp > gpu.gpus_per_node:
        return (f"TP={tp} would span nodes of {gpu.gpus_per_node} GPUs; tensor-parallel ranks "
                "must share a node")
    return None


def gpu_counts(gpu: GpuSpec, max_gpus: int) -> list[int]:
    """Replica sizes to try: powers of two within a node, then whole nodes."""
    within = [n for n in (1, 2, 4, 8, 16) if n <= gpu.gpus_per_node]
    nodes = range(2 * gpu.gpus_per_node, max_gpus + 1, gpu.gpus_per_node)
    return within + list(nodes)


def preferred_split(
    n: int, arch: Architecture, gpu: GpuSpec, mla_max_tensor_parallel: int
) -> tuple[int, int] | None:
    """The (TP, PP) the planner picks for `n` GPUs, or None when no split of n is valid."""
    cap = gpu.gpus_per_node
    if arch.uses_mla:
        cap = min(cap, mla_max_tensor_parallel)
    divisors = sorted((d for d in range(1, n + 1) if n % d == 0), reverse=True)
    ordered = [d for d in divisors if d <= cap] + [d for d in divisors if d > cap]
    for tp in ordered:
        if split_problem(arch, tp, n // tp, gpu) is None:
            return tp, n // tp
    return None
