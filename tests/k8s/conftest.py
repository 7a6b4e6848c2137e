"""Render the shipped configs once per session (the app builder runs; no cluster starts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierserve.config import load_config
from tierserve.k8s import K8sValues, render
from tierserve.platform.serve_entry import pod_settings, serve_deployments
from tierserve.platform.settings import ARCHITECTURES_DIR

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CONFIGS = {"local": ROOT / "configs" / "local.yaml", "deepseek": ROOT / "configs" / "deepseek.yaml"}
EXAMPLES = ROOT / "k8s"
SCHEMA_FILES = {
    ("v1", "Namespace"): "kubernetes-v1.34.0-strict/namespace-v1.json",
    ("v1", "Secret"): "kubernetes-v1.34.0-strict/secret-v1.json",
    ("v1", "Service"): "kubernetes-v1.34.0-strict/service-v1.json",
    ("apps/v1", "Deployment"): "kubernetes-v1.34.0-strict/deployment-apps-v1.json",
    ("ray.io/v1", "RayService"): "kuberay-v1.7.0/rayservice-ray.io-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"):
        "prometheus-operator-v0.93.0/podmonitor-monitoring.coreos.com-v1.json",
}
CRD_KINDS = {"RayService", "PodMonitor"}


def strict_crd(node):
    """A CRD schema that rejects unknown fields, as `kubectl apply --validate=strict` does:
    every object schema with properties and no other rule for extra keys gets
    additionalProperties: false."""
    if isinstance(node, list):
        return [strict_crd(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_crd(v) for k, v in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def schemas() -> dict:
    loaded = {}
    for key, name in SCHEMA_FILES.items():
        schema = json.loads((SCHEMAS / name).read_text())
        loaded[key] = strict_crd(schema) if key[1] in CRD_KINDS else schema
    return loaded


def rendered(name: str, values: K8sValues | None = None):
    config = load_config(CONFIGS[name])
    values = values or K8sValues()
    settings = pod_settings(values.models_pvc is not None)
    return config, render(config, values, lambda c: serve_deployments(c, settings),
                          ARCHITECTURES_DIR)


@pytest.fixture(scope="session")
def local():
    return rendered("local")


@pytest.fixture(scope="session")
def deepseek():
    return rendered("deepseek")
