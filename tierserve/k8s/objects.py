"""The Kubernetes objects beside the RayService: namespace, secrets, Redis, PodMonitor."""

from __future__ import annotations

from tierserve.k8s.cluster import SecretFile
from tierserve.k8s.pods import REDIS_NAME, REDIS_PORT, labels
from tierserve.k8s.values import K8sValues

PLACEHOLDER = "REPLACE-ME"


def meta(name: str, values: K8sValues, component: str) -> dict:
    return {"name": name, "namespace": values.namespace, "labels": labels(component)}


def namespace(values: K8sValues) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": values.namespace, "labels": labels("namespace")}}


def _secret(name: str, values: K8sValues, component: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": meta(name, values, component), "stringData": data}


def example_secrets(values: K8sValues, files: list[SecretFile]) -> list[dict]:
    """Placeholders: k8s/README.md creates the real secrets with kubectl instead."""
    contents = {
        values.api_keys_secret: ("api-keys", "# hashed API keys: `tierserve keys create` "
                                 "prints an entry\napi_keys: []\n"),
        values.weights_key_secret: ("weights-key", PLACEHOLDER + "-32-byte-key-base64\n"),
    }
    out = [_secret(f.secret, values, contents[f.secret][0], {f.key: contents[f.secret][1]})
           for f in files]
    redis = {"password": PLACEHOLDER}
    if values.redis.mode == "external":
        redis["url"] = f"redis://:{PLACEHOLDER}@redis.example.internal:6379/1"
    return out + [_secret(values.redis.secret, values, "redis", redis)]


def redis_service(values: K8sValues) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(REDIS_NAME, values, "redis"),
        "spec": {"type": "ClusterIP", "selector": labels("redis"),
                 "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}]},
    }


def redis_deployment(values: K8sValues) -> dict:
    r = values.redis
    data = ({"name": "data", "persistentVolumeClaim": {"claimName": r.storage_pvc}}
            if r.storage_pvc else {"name": "data", "emptyDir": {}})
    container = {
        "name": "redis",
        "image": r.image,
        "args": ["--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes"],
        "env": [{"name": "REDIS_PASSWORD", "valueFrom": {
            "secretKeyRef": {"name": r.secret, "key": "password"}}}],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "500m", "memory": r.memory},
                      "limits": {"memory": r.memory}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(REDIS_NAME, values, "redis"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels("redis")},
            "template": {"metadata": {"labels": labels("redis")},
                         "spec": {"containers": [container], "volumes": [data]}},
        },
    }


def pod_monitor(values: K8sValues) -> dict:
    """Scrape Ray's metrics port (8080) on every Ray pod KubeRay starts in the namespace."""
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": meta("tierserve-ray", values, "monitoring"),
        "spec": {
            "jobLabel": "ray.io/cluster",
            "namespaceSelector": {"matchNames": [values.namespace]},
            "selector": {"matchLabels": {"ray.io/is-ray-node": "yes"}},
            "podMetricsEndpoints": [{"port": "metrics", "interval": "15s"}],
        },
    }
