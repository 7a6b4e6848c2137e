"""The metric catalogue: Prometheus-valid names with units, and the Ray backend."""

from __future__ import annotations

import re

import pytest

from tierserve.observability.metrics import (
    ALL_METRICS,
    ROUTER_METRICS,
    TIER_METRICS,
    MemoryMetrics,
    NullMetrics,
    RayMetrics,
    Recorder,
)

UNITS = ("_seconds", "_tokens", "_requests", "_ratio", "_second", "_version", "_replicas")


def test_names_are_prefixed_unique_and_valid():
    names = [m.name for m in ALL_METRICS]
    assert len(set(names)) == len(names)
    for spec in ALL_METRICS:
        assert re.fullmatch(r"tierserve_[a-z0-9_]+", spec.name), spec.name
        assert not spec.name.endswith("_total"), "Ray appends _total to counters"
        assert spec.description
        if spec.kind == "histogram":
            assert spec.boundaries and list(spec.boundaries) == sorted(spec.boundaries)


def test_gauges_and_histograms_carry_a_unit():
    for spec in ROUTER_METRICS + TIER_METRICS:
        if spec.kind != "counter":
            assert spec.name.endswith(UNITS), spec.name


def test_prometheus_names():
    by_name = {m.name: m for m in ALL_METRICS}
    assert by_name["tierserve_requests"].prometheus_name == "ray_tierserve_requests_total"
    assert by_name["tierserve_time_to_first_token_seconds"].prometheus_name == \
        "ray_tierserve_time_to_first_token_seconds"


def test_memory_backend_checks_tags():
    metrics = MemoryMetrics()
    recorder = Recorder(metrics, ROUTER_METRICS)
    recorder.record("tierserve_context_store_errors", 1, {"operation": "load"})
    assert metrics.total("tierserve_context_store_errors") == 1
    with pytest.raises(ValueError):
        recorder.record("tierserve_context_store_errors", 1, {})


@pytest.mark.parametrize("backend", [RayMetrics(), NullMetrics()])
def test_ray_and_null_backends_record_outside_a_ray_worker(backend):
    recorder = Recorder(backend, ROUTER_METRICS + TIER_METRICS)
    tags = {"tier": "7b", "deployment": "d"}
    recorder.record("tierserve_time_to_first_token_seconds", 0.1, tags)
    recorder.record("tierserve_completion_tokens", 3, tags)
    recorder.record("tierserve_queue_depth_requests", 2, {**tags, "replica": "r"})
