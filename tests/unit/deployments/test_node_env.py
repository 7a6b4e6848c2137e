"""The Ray node environment tierserve starts Ray with (local, bench; KubeRay pods are
checked in tests/k8s)."""

from __future__ import annotations

from tierserve.deployments.node_env import serving_node_env


def test_workers_run_at_normal_priority_unless_the_operator_says_otherwise():
    assert serving_node_env({}) == {"RAY_worker_niceness": "0"}
    assert serving_node_env({"RAY_worker_niceness": "5"}) == {}
