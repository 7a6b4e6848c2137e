"""GPU models the planner knows (pure data).

Memory is the total nvidia-smi reports for the card (MiB), not the marketing figure:
an "80 GB" H100 SXM shows 81,559 MiB (79.6 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.errors import ConfigError

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class GpuSpec:
    key: str
    """The name used on the command line (`--gpu h100-80gb`)."""
    label: str
    memory_bytes: int
    gpus_per_node: int
    """GPUs in one node of the usual server (tensor-parallel ranks stay inside one)."""
    compute_capability: tuple[int, int]
    ray_accelerator_type: str
    """Ray's accelerator_type resource name for this card."""
    node_product: str
    """The `nvidia.com/gpu.product` node label GPU feature discovery sets on Kubernetes."""

    @property
    def supports_fp8(self) -> bool:
        """FP8 tensor cores (Ada, Hopper): W8A8 FP8; older cards run FP8 weight-only."""
        return self.compute_capability >= (8, 9)

    @property
    def supports_bf16(self) -> bool:
        return self.compute_capability >= (8, 0)


GPUS: dict[str, GpuSpec] = {
    spec.key: spec
    for spec in (
        GpuSpec("h100-80gb", "H100 80GB", 81559 * MiB, 8, (9, 0), "H100", "NVIDIA-H100-80GB-HBM3"),
        GpuSpec("h200-141gb", "H200 141GB", 143771 * MiB, 8, (9, 0), "H200", "NVIDIA-H200"),
        GpuSpec("a100-80gb", "A100 80GB", 81920 * MiB, 8, (8, 0), "A100-80G",
                "NVIDIA-A100-SXM4-80GB"),
        GpuSpec("l40s-48gb", "L40S 48GB", 46068 * MiB, 8, (8, 9), "L40S", "NVIDIA-L40S"),
    )
}
DEFAULT_GPU = "h100-80gb"


def gpu_spec(key: str) -> GpuSpec:
    try:
        return GPUS[key]
    except KeyError:
        raise ConfigError(f"unknown GPU '{key}'; known: {', '.join(GPUS)}") from None


def gpu_for_accelerator(accelerator_type: str | None) -> GpuSpec | None:
    """The GPU a variant's Ray `accelerator_type` names, or None when unknown or unset."""
    if accelerator_type is None:
        return None
    wanted = accelerator_type.lower()
    return next(
        (g for g in GPUS.values() if wanted in (g.ray_accelerator_type.lower(), g.key)), None
    )
