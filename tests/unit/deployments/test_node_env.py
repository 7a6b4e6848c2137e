"""The Ray node environment tierserve starts Ray with (local, bench; KubeRay pods are
checked in tests/k8s)."""

from __future__ import annotations

from tierserve.deployments.node_env import apply_serving_node_env, serving_node_env


def test_workers_run_at_normal_priority_unless_the_operator_says_otherwise():
    assert serving_node_env({}) == {"RAY_worker_niceness": "0"}
    assert serving_node_env({"RAY_worker_niceness": "5"}) == {}


def test_applying_sets_what_is_missing_and_keeps_what_is_there():
    environ = {"PATH": "/bin"}
    apply_serving_node_env(environ)
    assert environ == {"PATH": "/bin", "RAY_worker_niceness": "0"}
    mine = {"RAY_worker_niceness": "5"}
    apply_serving_node_env(mine)
    assert mine == {"RAY_worker_niceness": "5"}
