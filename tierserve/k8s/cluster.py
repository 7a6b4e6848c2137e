"""How the config changes on a cluster, and which files the pods must provide (pure).

A KubeRay install binds Serve on 0.0.0.0 and is reachable by anyone in (or routed to) the
cluster, so the rendered config always requires API keys, read from the mounted secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from tierserve.config import TierServeConfig
from tierserve.k8s.values import K8sValues

DEFAULT_API_KEYS_FILE = "/etc/tierserve/secrets/api-keys.yaml"
"""Where the API-key secret is mounted unless security.api_keys_file names another path."""


@dataclass(frozen=True)
class SecretFile:
    secret: str
    path: str
    """Absolute path on the pods; its file name is the secret's key."""

    @property
    def key(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def directory(self) -> str:
        return str(PurePosixPath(self.path).parent)


def cluster_config(config: TierServeConfig) -> TierServeConfig:
    """The config as the cluster runs it: host 0.0.0.0, auth required, keys from the secret.

    Each change is one the local defaults would get wrong on Kubernetes; everything else is
    passed through untouched (and `tierserve k8s render` prints what it changed)."""
    server = config.server.model_copy(update={"host": "0.0.0.0"})
    security = config.security
    updates: dict = {}
    if security.auth != "required":
        updates["auth"] = "required"
    if not (security.api_keys_file or "").startswith("/"):
        updates["api_keys_file"] = DEFAULT_API_KEYS_FILE
    if updates:
        security = security.model_copy(update=updates)
    return config.model_copy(update={"server": server, "security": security})


def changes(config: TierServeConfig) -> list[str]:
    """What cluster_config changed, for the operator to read."""
    cluster = cluster_config(config)
    pairs = [("server.host", config.server.host, cluster.server.host),
             ("security.auth", config.security.auth, cluster.security.auth),
             ("security.api_keys_file", config.security.api_keys_file,
              cluster.security.api_keys_file)]
    return [f"{name}: {old!r} -> {new!r}" for name, old, new in pairs if old != new]


def secret_files(config: TierServeConfig, values: K8sValues) -> list[SecretFile]:
    """Files the pods read from secrets: the API-key file and, if set, the weight key."""
    files = [SecretFile(values.api_keys_secret, config.security.api_keys_file
                        or DEFAULT_API_KEYS_FILE)]
    key_file = config.security.weights.key_file
    if key_file and key_file.startswith("/"):
        files.append(SecretFile(values.weights_key_secret, key_file))
    return files


def writable_dirs(config: TierServeConfig) -> list[str]:
    """Absolute directories tierserve writes outside its cache (the audit log)."""
    path = config.security.audit.path
    return [str(PurePosixPath(path).parent)] if path.startswith("/") else []
