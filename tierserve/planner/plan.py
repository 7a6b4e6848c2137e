"""The capacity plan of one variant on one GPU model: data from pure functions.

Sizing rule (from the source documents): plan GPU memory >= 1.5 x the weight bytes, the
extra half holding activations and KV cache, plus a minimum KV budget of
`min_kv_sequences` full `max_model_len` sequences. For MoE models the extra half is taken
on the *active* weights (the experts one token runs through): activations and KV cache
grow with the dense compute path, not with idle experts. For a dense model the two
readings coincide.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from tierserve.config import VariantConfig
from tierserve.planner import memory
from tierserve.planner.architecture import Architecture, param_count
from tierserve.planner.gpus import GiB, GpuSpec
from tierserve.planner.split import gpu_counts, preferred_split, split_problem
from tierserve.planner.support import device_notes

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default


@dataclass(frozen=True)
class PlannerPolicy:
    headroom_fraction: float = 0.5
    """Extra memory as a fraction of the (active) weight bytes: the '1.5 x weights' rule."""
    min_kv_sequences: int = 1
    """Full-length sequences the KV cache must hold at least."""
    mla_max_tensor_parallel: int = 4
    """Largest TP for MLA models before GPUs go into pipeline stages (see split.py)."""
    activation_reserve_bytes: int = 3 * GiB
    """Per-GPU memory vLLM keeps out of the KV cache (peak activations, CUDA context,
    NCCL buffers); used only to estimate the KV capacity, not for sizing."""
    max_gpus: int = 64
    """Largest replica the planner considers."""


@dataclass(frozen=True)
class Fit:
    """One TP x PP placement of a variant, checked against the sizing rule."""

    tensor_parallel_size: int
    pipeline_parallel_size: int
    gpus: int
    nodes: int
    weight_bytes_per_gpu: int
    headroom_bytes_per_gpu: int
    min_kv_bytes_per_gpu: int
    need_bytes_per_gpu: int
    kv_bytes_per_token_per_gpu: int
    kv_budget_bytes_per_gpu: int
    kv_cache_tokens: int
    """Tokens the KV cache of one replica holds (every GPU holds a slice of each token)."""
    max_concurrent_seqs: int
    """Sequences of max_model_len tokens that fit in the KV cache at once."""
    problem: str | None
    """Why this placement cannot serve the model, or None."""

    @property
    def fits(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Plan:
    deployment: str
    tier: str
    model: str
    precision: str
    gpu: GpuSpec
    params: int
    active_params: int
    weight_bytes: int
    active_weight_bytes: int
    kv_bytes_per_token: int
    max_model_len: int
    max_num_seqs: int
    configured: Fit
    """The TP x PP the config asks for."""
    recommended: Fit | None
    """The smallest placement that fits, or None when nothing up to max_gpus does."""
    explicit: bool
    """The config sets tensor_parallel_size or pipeline_parallel_size itself."""
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        best = self.recommended
        return {
            "deployment": self.deployment,
            "tier": self.tier,
            "model": self.model,
            "precision": self.precision,
            "gpu": self.gpu.key,
            "params": self.params,
            "active_params": self.active_params,
            "weight_bytes": self.weight_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "max_model_len": self.max_model_len,
            "gpus_per_replica": best.gpus if best else None,
            "tensor_parallel_size": best.tensor_parallel_size if best else None,
            "pipeline_parallel_size": best.pipeline_parallel_size if best else None,
            "max_concurrent_seqs": best.max_concurrent_seqs if best else None,
            "kv_cache_tokens": best.kv_cache_tokens if best else None,
            "memory_over_weights": round(best.gpus * self.gpu.memory_bytes / self.weight_bytes, 2)
            if best else None,
            "configured": asdict(self.configured) | {"fits": self.configured.fits},
            "notes": list(self.notes),
        }


def gpu_memory_utilization(variant: VariantConfig) -> float:
    return float(variant.engine_kwargs.get("gpu_memory_utilization",
                                           DEFAULT_GPU_MEMORY_UTILIZATION))


def evaluate(
    variant: VariantConfig, arch: Architecture, gpu: GpuSpec, tp: int, pp: int,
    policy: PlannerPolicy,
) -> Fit:
    """Check TP x PP against the sizing rule and estimate its KV capacity."""
    n = tp * pp
    weights = memory.weight_bytes(variant, arch)
    headroom = policy.headroom_fraction * memory.active_weight_bytes(variant, arch)
    kv_token = memory.kv_bytes_per_token_per_gpu(variant, arch, tp, pp)
    min_kv = kv_token * variant.max_model_len * policy.min_kv_sequences
    need = math.ceil((weights + headroom) / n) + min_kv
    budget = (gpu.memory_bytes * gpu_memory_utilization(variant) - weights / n
              - policy.activation_reserve_bytes)
    if variant.kv_cache_bytes is not None:
        budget = min(budget, variant.kv_cache_bytes)
    budget = max(0, int(budget))
    problem = split_problem(arch, tp, pp, gpu)
    if problem is None and need > gpu.memory_bytes:
        problem = (f"needs {need / GiB:.1f} GiB per GPU, {gpu.label} has "
                   f"{gpu.memory_bytes / GiB:.1f} GiB")
    return Fit(
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        gpus=n,
        nodes=math.ceil(n / gpu.gpus_per_node),
        weight_bytes_per_gpu=math.ceil(weights / n),
        headroom_bytes_per_gpu=math.ceil(headroom / n),
        min_kv_bytes_per_gpu=min_kv,
        need_bytes_per_gpu=need,
        kv_bytes_per_token_per_gpu=kv_token,
        kv_budget_bytes_per_gpu=budget,
        kv_cache_tokens=budget // kv_token,
        max_concurrent_seqs=budget // (kv_token * variant.max_model_len),
        problem=problem,
    )


def recommend(
    variant: VariantConfig, arch: Architecture, gpu: GpuSpec, policy: PlannerPolicy
) -> Fit | None:
    """The smallest replica (fewest GPUs, then the preferred split) that fits."""
    for n in gpu_counts(gpu, policy.max_gpus):
        split = preferred_split(n, arch, gpu, policy.mla_max_tensor_parallel)
        if split is None:
            continue
        fit = evaluate(variant, arch, gpu, *split, policy)
        if fit.fits:
            return fit
    return None


def plan_variant(
    tier_id: str, variant: VariantConfig, arch: Architecture, gpu: GpuSpec,
    policy: PlannerPolicy | None = None,
) -> Plan:
    policy = policy or PlannerPolicy()
    configured = evaluate(variant, arch, gpu, variant.tensor_parallel_size,
                          variant.pipeline_parallel_size, policy)
    recommended = recommend(variant, arch, gpu, policy)
    notes = list(device_notes(variant, gpu))
    fits_seqs = (recommended or configured).max_concurrent_seqs
    if fits_seqs < variant.max_num_seqs:
        notes.append(f"only {fits_seqs} sequences of {variant.max_model_len} tokens fit in the "
                     f"KV cache (max_num_seqs {variant.max_num_seqs}); shorter ones share it")
    return Plan(
        deployment=variant.name,
        tier=tier_id,
        model=variant.model,
        precision=variant.precision,
        gpu=gpu,
        params=param_count(arch).total,
        active_params=param_count(arch, active_only=True).total,
        weight_bytes=memory.weight_bytes(variant, arch),
        active_weight_bytes=memory.active_weight_bytes(variant, arch),
        kv_bytes_per_token=memory.kv_bytes_per_token(variant, arch),
        max_model_len=variant.max_model_len,
        max_num_seqs=variant.max_num_seqs,
        configured=configured,
        recommended=recommended,
        explicit=bool({"tensor_parallel_size", "pipeline_parallel_size"}
                      & variant.model_fields_set),
        notes=tuple(notes),
    )
