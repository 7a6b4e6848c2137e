"""KubeRay manifests rendered from the config (pure: no Ray, no vLLM, no cluster)."""

from tierserve.k8s.render import MAIN_FILE, SECRETS_FILE, Manifests, render, write
from tierserve.k8s.values import K8sValues, load_values

__all__ = ["MAIN_FILE", "SECRETS_FILE", "K8sValues", "Manifests", "load_values", "render",
           "write"]
