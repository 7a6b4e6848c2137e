"""Pod templates of the Ray head and worker groups (pure dict building)."""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.deployments.node_env import SERVING_NODE_ENV
from tierserve.k8s.cluster import SecretFile
from tierserve.k8s.groups import WorkerGroup
from tierserve.k8s.values import K8sValues

POD_CACHE_DIR = "/home/ray/.cache/tierserve"
"""TIERSERVE_CACHE_DIR on every pod; the serveConfigV2 deployments are rendered with it."""
MODELS_MOUNT = "/models"
REDIS_NAME = "tierserve-redis"
"""Name of the rendered Redis Deployment and Service (mode deploy)."""
REDIS_PORT = 6379
METRICS_PORT = 8080
LABELS = {"app.kubernetes.io/name": "tierserve", "app.kubernetes.io/part-of": "tierserve"}


def labels(component: str) -> dict[str, str]:
    return {**LABELS, "app.kubernetes.io/component": component}


def redis_host(values: K8sValues) -> str:
    return f"{REDIS_NAME}.{values.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class PodFiles:
    """What every Ray pod mounts: secret files and directories tierserve writes to."""

    secrets: tuple[SecretFile, ...]
    writable: tuple[str, ...]
    api_keys_file: str


def env(values: K8sValues, files: PodFiles) -> list[dict]:
    """Environment of every Ray pod: tierserve settings, Redis and the API key file."""
    items = [{"name": "TIERSERVE_CACHE_DIR", "value": POD_CACHE_DIR}]
    items += [{"name": k, "value": v} for k, v in sorted(SERVING_NODE_ENV.items())]
    if values.models_pvc:
        items.append({"name": "TIERSERVE_MODELS_DIR", "value": MODELS_MOUNT})
    items.append({"name": "TIERSERVE_API_KEYS_FILE", "value": files.api_keys_file})
    secret = values.redis.secret
    if values.redis.mode == "external":
        items.append({"name": "REDIS_URL", "valueFrom": {
            "secretKeyRef": {"name": secret, "key": "url"}}})
        return items
    items.append({"name": "REDIS_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": secret, "key": "password"}}})
    url = f"redis://:$(REDIS_PASSWORD)@{redis_host(values)}:{REDIS_PORT}/{values.redis.database}"
    items.append({"name": "REDIS_URL", "value": url})
    return items


def _secret_volumes(files: PodFiles) -> tuple[list[dict], list[dict]]:
    """One projected volume per directory, holding every secret file that lives there."""
    directories = sorted({f.directory for f in files.secrets})
    volumes, mounts = [], []
    for i, directory in enumerate(directories):
        sources = [{"secret": {"name": f.secret, "items": [{"key": f.key, "path": f.key}]}}
                   for f in files.secrets if f.directory == directory]
        name = f"secrets-{i}"
        volumes.append({"name": name, "projected": {"sources": sources}})
        mounts.append({"name": name, "mountPath": directory, "readOnly": True})
    return volumes, mounts


def _volumes(values: K8sValues, shm: bool, files: PodFiles) -> tuple[list[dict], list[dict]]:
    volumes, mounts = _secret_volumes(files)
    for i, directory in enumerate(files.writable):
        volumes.append({"name": f"state-{i}", "emptyDir": {}})
        mounts.append({"name": f"state-{i}", "mountPath": directory})
    if values.models_pvc:
        volumes.append({"name": "models", "persistentVolumeClaim": {
            "claimName": values.models_pvc, "readOnly": True}})
        mounts.append({"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True})
    if shm:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory",
                                                     "sizeLimit": values.shm_size}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    return volumes, mounts


def _ports(serve_port: int, head: bool) -> list[dict]:
    ports = [{"name": "serve", "containerPort": serve_port},
             {"name": "metrics", "containerPort": METRICS_PORT}]
    if head:
        ports = [{"name": "gcs-server", "containerPort": 6379},
                 {"name": "dashboard", "containerPort": 8265},
                 {"name": "client", "containerPort": 10001}] + ports
    return ports


def pod_template(
    values: K8sValues, name: str, resources: dict, serve_port: int, files: PodFiles,
    head: bool = False, group: WorkerGroup | None = None,
) -> dict:
    gpu = bool(group and group.gpus_per_pod)
    volumes, mounts = _volumes(values, gpu, files)
    container = {
        "name": name,
        "image": values.image,
        "imagePullPolicy": values.image_pull_policy,
        "env": env(values, files),
        "ports": _ports(serve_port, head),
        "resources": {"requests": resources, "limits": resources},
        "volumeMounts": mounts,
    }
    spec: dict = {"containers": [container], "volumes": volumes}
    if group is not None:
        spec.update(_placement(values, group))
    component = "ray-head" if head else f"ray-worker-{group.name if group else name}"
    return {"metadata": {"labels": labels(component)}, "spec": spec}


def _placement(values: K8sValues, group: WorkerGroup) -> dict:
    override = values.tiers.get(group.tier) if group.tier else None
    selector = override.node_selector if override and override.node_selector is not None else (
        {"nvidia.com/gpu.product": group.gpu.node_product} if group.gpu else None)
    tolerations = (
        [t.model_dump(exclude_none=True) for t in override.tolerations]
        if override and override.tolerations is not None
        else ([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
              if group.gpus_per_pod else None)
    )
    out: dict = {}
    if selector:
        out["nodeSelector"] = dict(sorted(selector.items()))
    if tolerations:
        out["tolerations"] = tolerations
    return out


def worker_resources(group: WorkerGroup) -> dict:
    res = {"cpu": group.cpus_per_pod, "memory": group.memory_per_pod}
    if group.gpus_per_pod:
        res["nvidia.com/gpu"] = str(group.gpus_per_pod)
    return res
