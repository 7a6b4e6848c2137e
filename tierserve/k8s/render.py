"""Render a KubeRay install from the config: deterministic objects, grouped into files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tierserve.config import TierServeConfig
from tierserve.deployments.placement import uses_gpus
from tierserve.k8s import objects
from tierserve.k8s.groups import WorkerGroup, router_group, tier_group
from tierserve.k8s.cluster import cluster_config, secret_files, writable_dirs
from tierserve.k8s.pods import PodFiles
from tierserve.k8s.rayservice import dump, ray_service
from tierserve.k8s.values import K8sValues
from tierserve.planner.check import plan_config, target_gpu
from tierserve.planner.plan import Plan

MAIN_FILE = "tierserve.yaml"
SECRETS_FILE = "secrets.example.yaml"
HEADER = ("# Rendered by `tierserve k8s render` from {source}; do not edit by hand.\n"
          "# {note}\n")


@dataclass(frozen=True)
class Manifests:
    objects: tuple[dict, ...]
    """What `kubectl apply -f tierserve.yaml` creates, in apply order."""
    secrets: tuple[dict, ...]
    """Placeholder secrets (k8s/README.md creates the real ones)."""
    groups: tuple[WorkerGroup, ...]

    def files(self, source: str) -> dict[str, str]:
        main = HEADER.format(source=source, note="Create the secrets first (k8s/README.md).")
        secrets = HEADER.format(source=source, note="PLACEHOLDERS: create real secrets with "
                                "kubectl (k8s/README.md), never apply this file as is.")
        return {
            MAIN_FILE: main + "---\n".join(dump(o) for o in self.objects),
            SECRETS_FILE: secrets + "---\n".join(dump(o) for o in self.secrets),
        }


def gpu_plans(config: TierServeConfig, values: K8sValues, architectures_dir: Path | None
              ) -> dict[str, Plan]:
    """Plans of the GPU variants (CPU variants are sized from their Ray resources)."""
    gpu_names = {v.name for _, v in config.variants() if uses_gpus(v)}
    return {r.deployment: r for r in plan_config(config, architectures_dir, gpu=values.gpu)
            if isinstance(r, Plan) and r.deployment in gpu_names}


def worker_groups(config: TierServeConfig, values: K8sValues, plans: dict[str, Plan]
                  ) -> list[WorkerGroup]:
    groups = [router_group(config, values)]
    for tier in sorted(config.tiers, key=lambda t: config.tier_ids.index(t.id)):
        gpu_variants = [v for v in tier.variants if uses_gpus(v)]
        gpu = target_gpu(gpu_variants[0], values.gpu) if gpu_variants else None
        groups.append(tier_group(tier, plans, gpu, values))
    return groups


def pod_files(cluster: TierServeConfig, values: K8sValues) -> PodFiles:
    return PodFiles(tuple(secret_files(cluster, values)), tuple(writable_dirs(cluster)),
                    cluster.security.api_keys_file)


def render(
    config: TierServeConfig,
    values: K8sValues,
    deployments_for: Callable[[TierServeConfig], list[dict]],
    architectures_dir: Path | None,
) -> Manifests:
    """The install of `config`. `deployments_for(cluster_config)` returns each deployment's
    Serve options as the app builder sets them (platform/serve_entry.py), which go into
    serveConfigV2 beside the cluster config itself."""
    cluster = cluster_config(config)
    groups = worker_groups(cluster, values, gpu_plans(cluster, values, architectures_dir))
    files = pod_files(cluster, values)
    main = [objects.namespace(values)]
    if values.redis.mode == "deploy":
        main += [objects.redis_service(values), objects.redis_deployment(values)]
    main.append(ray_service(cluster, values, deployments_for(cluster), groups, files))
    if values.pod_monitor:
        main.append(objects.pod_monitor(values))
    secrets = objects.example_secrets(values, list(files.secrets))
    return Manifests(tuple(main), tuple(secrets), tuple(groups))


def write(manifests: Manifests, out_dir: Path, source: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in manifests.files(source).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
