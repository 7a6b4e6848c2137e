"""Cluster settings of a KubeRay install: what the serving config cannot know (pure).

Image, namespace, node placement, host memory, Redis and secrets. Loaded from an
optional YAML file (`tierserve k8s render --values FILE`); every field has a default, so
the serving config alone renders a complete install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierserve.errors import ConfigError

K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(Strict):
    key: str = Field(..., description="Taint key to tolerate, e.g. nvidia.com/gpu.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Match operator.")
    value: str | None = Field(None, description="Taint value (operator Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        "NoSchedule", description="Taint effect; None tolerates every effect.")


class TierGroupValues(Strict):
    """Overrides for the worker group of one tier."""

    node_selector: dict[str, str] | None = Field(
        None, description="Node labels the group's pods require; default: the planned GPU's "
        "nvidia.com/gpu.product label (none for CPU tiers).")
    tolerations: list[Toleration] | None = Field(
        None, description="Taints the pods tolerate; default: nvidia.com/gpu on GPU tiers.")
    memory: str | None = Field(
        None, description="Host memory per pod (Kubernetes quantity, e.g. '600Gi'); default: "
        "1.2 x the weights the pod's GPUs hold + 16 GiB, or cpu_pod_memory on CPU.")
    cpu: str | None = Field(None, description="CPUs per pod (quantity); default: from the "
                            "variants' Ray resources + 1.")


class HeadValues(Strict):
    cpu: str = Field("4", description="CPU request/limit of the Ray head pod (quantity).")
    memory: str = Field("16Gi", description="Memory of the Ray head pod (quantity).")


class RedisValues(Strict):
    """Redis for GCS fault tolerance, conversations, rate limits and audit stream."""

    mode: Literal["deploy", "external"] = Field(
        "deploy", description="'deploy' renders a Redis Deployment + Service; 'external' uses "
        "the address and URL in the Secret `secret`.")
    image: str = Field("redis:7.4.1-alpine", description="Redis image (mode deploy).")
    secret: str = Field("tierserve-redis", pattern=K8S_NAME, description="Secret with key "
                        "`password` (and, for mode external, `url`: redis://:pw@host:port/db).")
    address: str | None = Field(
        None, description="host:port of the external Redis for GCS fault tolerance "
        "(mode external; required there).")
    database: int = Field(1, ge=0, le=15, description="Redis database of tierserve's own data "
                          "(mode deploy); Ray's GCS uses database 0.")
    storage_pvc: str | None = Field(
        None, description="PersistentVolumeClaim for Redis data; None: emptyDir (GCS state "
        "survives a head crash, not a Redis pod restart).")
    memory: str = Field("2Gi", description="Memory of the Redis pod (quantity).")


class K8sValues(Strict):
    namespace: str = Field("tierserve", pattern=K8S_NAME, description="Namespace of all objects.")
    image: str = Field(
        "tierserve:0.1.0-gpu", description="Container image with tierserve, Ray 2.60.0 and a "
        "CUDA vLLM build (see k8s/README.md); used by head and workers.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Pull policy of that image.")
    ray_version: str = Field("2.60.0", description="rayVersion of the RayCluster.")
    gpu: str | None = Field(
        None, description="GPU model to plan on (h100-80gb, h200-141gb, a100-80gb, l40s-48gb); "
        "default: each variant's accelerator_type.")
    head: HeadValues = Field(default_factory=HeadValues, description="Ray head pod.")
    router_cpu_per_pod: str | None = Field(
        None, description="CPUs of a router pod; default: router.num_cpus rounded up + 1.")
    router_memory: str = Field("8Gi", description="Memory of a router pod (quantity).")
    cpu_pod_memory: str = Field("16Gi", description="Memory of a CPU-only tier pod (quantity).")
    tiers: dict[Literal["7b", "33b", "236b"], TierGroupValues] = Field(
        default_factory=dict, description="Per-tier worker group overrides.")
    models_pvc: str | None = Field(
        "tierserve-models", description="PersistentVolumeClaim holding the model directories "
        "(by repo id, e.g. deepseek-ai/deepseek-llm-7b-chat), mounted read-only at /models; "
        "None: models must be in the image.")
    shm_size: str = Field("64Gi", description="Size of /dev/shm on GPU pods (NCCL, vLLM).")
    api_keys_secret: str = Field(
        "tierserve-api-keys", pattern=K8S_NAME, description="Secret with the hashed API keys "
        "file, mounted at security.api_keys_file (default /etc/tierserve/secrets/api-keys.yaml; "
        "the file name is the secret's key).")
    weights_key_secret: str = Field(
        "tierserve-weights-key", pattern=K8S_NAME, description="Secret holding the AES key "
        "file named by security.weights.key_file (mounted only when that is set).")
    redis: RedisValues = Field(default_factory=RedisValues, description="Redis.")
    pod_monitor: bool = Field(
        False, description="Render a PodMonitor (Prometheus Operator) for Ray's metrics port.")
    upgrade_strategy: Literal["NewCluster", "None"] = Field(
        "NewCluster", description="RayService upgrade when rayClusterConfig changes: "
        "'NewCluster' starts a new cluster and switches traffic once it is ready; 'None' "
        "leaves the running cluster (changes need a manual restart).")


def load_values(path: str | Path | None) -> K8sValues:
    if path is None:
        return K8sValues()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        values = K8sValues.model_validate(data)
    except OSError as err:
        raise ConfigError(f"cannot read values {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{path} is invalid: {fields}") from None
    if values.redis.mode == "external" and not values.redis.address:
        raise ConfigError(f"{path}: redis.address is required with redis.mode external")
    return values
