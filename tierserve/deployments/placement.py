"""Ray placement of one replica's engine workers, as data (pure).

A replica with TP x PP > 1 reserves one bundle for the replica actor and one per engine
rank; vLLM's Ray executor then starts its workers in that placement group. TP ranks
share a node (STRICT_PACK); pipeline stages may span nodes (PACK).
"""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.config import VariantConfig

REPLICA_ACTOR_CPUS = 1.0


@dataclass(frozen=True)
class Placement:
    actor_resources: dict[str, float]
    bundles: list[dict[str, float]] | None
    strategy: str | None

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
        return options


def placement_for(variant: VariantConfig) -> Placement:
    r = variant.resources
    if variant.world_size == 1:
        actor = {"CPU": r.num_cpus, "GPU": r.num_gpus}
        if r.memory_bytes:
            actor["memory"] = float(r.memory_bytes)
        return Placement(actor, None, None)
    worker = {"CPU": r.num_cpus, "GPU": max(r.num_gpus, 1.0)}
    bundles = [{"CPU": REPLICA_ACTOR_CPUS}] + [dict(worker) for _ in range(variant.world_size)]
    strategy = "STRICT_PACK" if variant.pipeline_parallel_size == 1 else "PACK"
    return Placement({"CPU": REPLICA_ACTOR_CPUS}, bundles, strategy)
