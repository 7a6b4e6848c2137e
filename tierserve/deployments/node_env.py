"""Environment of a Ray node that serves tierserve: local `tierserve up`, `tierserve bench`
and the KubeRay pods all start Ray with it (no Ray import here)."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SERVING_NODE_ENV: dict[str, str] = {
    # Ray starts every worker process at niceness 15 (its `worker_niceness` default), and a
    # replica's vLLM engine inherits it: inference then ranks below every other process on
    # the host — the raylet, a co-located Redis, a log shipper, a bare vLLM beside it.
    # Serving replicas are the node's purpose, so run them at normal priority
    # (benchmarks/README.md measures the difference).
    "RAY_worker_niceness": "0",
}


def serving_node_env(environ: dict[str, str]) -> dict[str, str]:
    """The variables to set before Ray starts; an operator's own setting wins."""
    return {k: v for k, v in SERVING_NODE_ENV.items() if k not in environ}


def apply_serving_node_env(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set the serving node environment in this process before it starts Ray (the raylet
    and its workers inherit it)."""
    environ.update(serving_node_env(dict(environ)))
