"""Ray worker groups: one per tier, sized from the config and the capacity planner (pure).

A GPU tier's pods each get the GPUs of its largest replica that fits in a node (replicas
larger than a node span whole pods); smaller replicas pack into a pod. Pod counts follow
the variants' start/min/max replicas, so KubeRay's autoscaler can add pods when Serve
adds replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tierserve.config import TierConfig, TierServeConfig, VariantConfig
from tierserve.deployments.placement import placement_for, uses_gpus
from tierserve.k8s.values import K8sValues
from tierserve.planner.gpus import GiB, GpuSpec
from tierserve.planner.plan import Plan

HOST_MEMORY_FACTOR = 1.2
"""Host memory per pod as a multiple of the weights its GPUs hold (loading, pinned buffers)."""
HOST_MEMORY_EXTRA = 16 * GiB
RAY_OVERHEAD_CPUS = 1
"""A CPU per pod beyond the replicas' own, for the raylet, the Serve proxy and metrics."""


@dataclass(frozen=True)
class WorkerGroup:
    name: str
    tier: str
    gpus_per_pod: int
    cpus_per_pod: str
    memory_per_pod: str
    replicas: int
    min_replicas: int
    max_replicas: int
    gpu: GpuSpec | None
    variants: tuple[str, ...]


def replica_cpus(variant: VariantConfig) -> float:
    placement = placement_for(variant)
    if placement.bundles is None:
        return placement.actor_resources.get("CPU", 0.0)
    return sum(b.get("CPU", 0.0) for b in placement.bundles)


@dataclass(frozen=True)
class _Shape:
    """How one variant's replicas map onto pods of `pod_gpus` GPUs."""

    pods_per_replica: int
    replicas_per_pod: int
    cpus_per_pod: float

    def pods(self, replicas: int) -> int:
        return math.ceil(replicas / self.replicas_per_pod) * self.pods_per_replica


def _shape(variant: VariantConfig, pod_gpus: int) -> _Shape:
    gpus = variant.world_size if uses_gpus(variant) else 0
    if gpus == 0 or pod_gpus == 0:
        return _Shape(1, 1, replica_cpus(variant))
    pods = math.ceil(gpus / pod_gpus)
    per_pod = max(1, pod_gpus // gpus)
    return _Shape(pods, per_pod, replica_cpus(variant) / pods * per_pod)


def _pod_gpus(tier: TierConfig, gpu: GpuSpec | None) -> int:
    per_node = gpu.gpus_per_node if gpu else 8
    sizes = [min(v.world_size, per_node) for v in tier.variants if uses_gpus(v)]
    return max(sizes, default=0)


def _memory(tier: TierConfig, pod_gpus: int, plans: dict[str, Plan], values: K8sValues) -> str:
    if pod_gpus == 0:
        return values.cpu_pod_memory
    weights = [plans[v.name].configured.weight_bytes_per_gpu for v in tier.variants
               if v.name in plans]
    if not weights:
        return values.cpu_pod_memory
    need = max(weights) * pod_gpus * HOST_MEMORY_FACTOR + HOST_MEMORY_EXTRA
    return f"{math.ceil(need / GiB)}Gi"


def tier_group(
    tier: TierConfig, plans: dict[str, Plan], gpu: GpuSpec | None, values: K8sValues
) -> WorkerGroup:
    pod_gpus = _pod_gpus(tier, gpu)
    shapes = {v.name: _shape(v, pod_gpus) for v in tier.variants}
    cpus = max(s.cpus_per_pod for s in shapes.values())
    override = values.tiers.get(tier.id)
    counts = [
        sum(shapes[v.name].pods(getattr(v.scaling, field)) for v in tier.variants)
        for field in ("start_replicas", "min_replicas", "max_replicas")
    ]
    return WorkerGroup(
        name=f"tier-{tier.id}",
        tier=tier.id,
        gpus_per_pod=pod_gpus,
        cpus_per_pod=(override.cpu if override and override.cpu
                      else str(math.ceil(cpus) + RAY_OVERHEAD_CPUS)),
        memory_per_pod=(override.memory if override and override.memory
                        else _memory(tier, pod_gpus, plans, values)),
        replicas=counts[0],
        min_replicas=counts[1],
        max_replicas=counts[2],
        gpu=gpu if pod_gpus else None,
        variants=tuple(v.name for v in tier.variants),
    )


def router_group(config: TierServeConfig, values: K8sValues) -> WorkerGroup:
    cpus = values.router_cpu_per_pod or str(math.ceil(config.router.num_cpus) + RAY_OVERHEAD_CPUS)
    n = config.router.num_replicas
    return WorkerGroup("router", "", 0, cpus, values.router_memory, n, n, n, None, ("router",))
