"""Ray placement of one replica's engine workers, as data (pure).

GPU replica with TP x PP > 1: one bundle for the replica actor and one per engine rank
(one GPU each); vLLM's Ray executor starts its workers in that placement group. TP ranks
share a node (STRICT_PACK); pipeline stages may span nodes (PACK).
CPU replica: vLLM's CPU build has no Ray executor ("current platform cpu does not support
ray"), so its TP ranks are child processes of the replica (the `mp` executor) and the
replica actor reserves the CPUs of all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.config import TierServeConfig, VariantConfig
from tierserve.errors import ConfigError

REPLICA_ACTOR_CPUS = 1.0
ACCELERATOR_RESOURCE = "accelerator_type:{}"
"""Ray's per-node resource naming a GPU model; a tiny request pins a bundle to such nodes."""
ACCELERATOR_PIN = 0.001


@dataclass(frozen=True)
class Placement:
    actor_resources: dict[str, float]
    bundles: list[dict[str, float]] | None
    strategy: str | None
    accelerator_type: str | None = None

    def serve_options(self) -> dict:
        options: dict = {"ray_actor_options": self.ray_actor_options()}
        if self.bundles is not None:
            options["placement_group_bundles"] = self.bundles
            options["placement_group_strategy"] = self.strategy
        return options

    def ray_actor_options(self) -> dict:
        res = self.actor_resources
        options = {"num_cpus": res.get("CPU", 0.0), "num_gpus": res.get("GPU", 0.0)}
        if "memory" in res:
            options["memory"] = res["memory"]
        if self.accelerator_type and self.bundles is None and options["num_gpus"] > 0:
            options["accelerator_type"] = self.accelerator_type
        return options


def uses_gpus(variant: VariantConfig) -> bool:
    return variant.resources.num_gpus > 0


def placement_for(variant: VariantConfig) -> Placement:
    r = variant.resources
    if variant.world_size == 1 or not uses_gpus(variant):
        actor = {"CPU": r.num_cpus * variant.world_size, "GPU": r.num_gpus}
        if r.memory_bytes:
            actor["memory"] = float(r.memory_bytes)
        return Placement(actor, None, None, r.accelerator_type)
    worker = {"CPU": r.num_cpus, "GPU": max(r.num_gpus, 1.0)}
    if r.accelerator_type:
        worker[ACCELERATOR_RESOURCE.format(r.accelerator_type)] = ACCELERATOR_PIN
    bundles = [{"CPU": REPLICA_ACTOR_CPUS}] + [dict(worker) for _ in range(variant.world_size)]
    strategy = "STRICT_PACK" if variant.pipeline_parallel_size == 1 else "PACK"
    return Placement({"CPU": REPLICA_ACTOR_CPUS}, bundles, strategy, r.accelerator_type)


def placement_problems(variant: VariantConfig) -> list[str]:
    """What the engine's device cannot do with this variant's TP x PP (empty when fine)."""
    where, r = f"variant '{variant.name}'", variant.resources
    if not uses_gpus(variant) and variant.pipeline_parallel_size > 1:
        return [f"{where}: pipeline_parallel_size > 1 needs GPUs; vLLM's CPU build (0.32) "
                "loads but fails at the first step (AssertionError in "
                "sync_and_gather_intermediate_tensors). Use tensor_parallel_size on CPU."]
    if uses_gpus(variant) and variant.world_size > 1 and r.num_gpus != 1:
        return [f"{where}: with TP x PP = {variant.world_size}, every rank takes one whole GPU; "
                f"set resources.num_gpus to 1 (got {r.num_gpus})"]
    return []


def validate_placements(config: TierServeConfig) -> None:
    problems = [p for _, variant in config.variants() for p in placement_problems(variant)]
    if problems:
        raise ConfigError("\n".join(problems))
