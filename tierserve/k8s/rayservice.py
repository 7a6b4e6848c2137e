"""The RayService: serveConfigV2 from the config, head group and worker groups (pure)."""

from __future__ import annotations

import yaml

from tierserve.config import TierServeConfig
from tierserve.k8s.groups import WorkerGroup
from tierserve.k8s.objects import meta
from tierserve.k8s.pods import REDIS_NAME, REDIS_PORT, PodFiles, pod_template, worker_resources
from tierserve.k8s.values import K8sValues

SERVE_IMPORT_PATH = "tierserve.platform.serve_entry:app_builder"
"""The application builder Serve calls with `args` (it parses args.config, builds the app)."""


class BlockDumper(yaml.SafeDumper):
    """YAML with multi-line strings as literal blocks and no anchors: diff-friendly."""

    def ignore_aliases(self, data) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


BlockDumper.add_representer(str, _str)


def dump(data) -> str:
    return yaml.dump(data, Dumper=BlockDumper, sort_keys=False, width=100,
                     default_flow_style=False, allow_unicode=True)


def serve_config(config: TierServeConfig, deployments: list[dict]) -> dict:
    """The Serve config (ServeDeploySchema) of the one application, built on the cluster
    from the same config tree: `args.config` is the config itself."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": config.server.port},
        "applications": [{
            "name": config.server.app_name,
            "route_prefix": "/",
            "import_path": SERVE_IMPORT_PATH,
            "args": {"config": config.model_dump(mode="json", exclude_unset=True)},
            "deployments": deployments,
        }],
    }


def _gcs_fault_tolerance(values: K8sValues) -> dict:
    r = values.redis
    address = r.address if r.mode == "external" else f"{REDIS_NAME}:{REDIS_PORT}"
    return {
        "redisAddress": address,
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": r.secret, "key": "password"}}},
    }


def _worker_group(values: K8sValues, group: WorkerGroup, port: int, files: PodFiles) -> dict:
    template = pod_template(values, "ray-worker", worker_resources(group), port, files,
                            group=group)
    return {
        "groupName": group.name,
        "replicas": group.replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "rayStartParams": {},
        "template": template,
    }


def ray_service(
    config: TierServeConfig, values: K8sValues, deployments: list[dict],
    groups: list[WorkerGroup], files: PodFiles,
) -> dict:
    """`config`: the cluster config (k8s/cluster.py), written whole into serveConfigV2."""
    port = config.server.port
    head = {"cpu": values.head.cpu, "memory": values.head.memory}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": meta(config.server.app_name, values, "rayservice"),
        "spec": {
            "upgradeStrategy": {"type": values.upgrade_strategy},
            "serveConfigV2": dump(serve_config(config, deployments)),
            "rayClusterConfig": {
                "rayVersion": values.ray_version,
                "enableInTreeAutoscaling": True,
                "gcsFaultToleranceOptions": _gcs_fault_tolerance(values),
                "headGroupSpec": {
                    # no replicas on the head: it keeps GCS, the Serve controller, dashboard
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": pod_template(values, "ray-head", head, port, files, head=True),
                },
                "workerGroupSpecs": [_worker_group(values, g, port, files) for g in groups],
            },
        },
    }
