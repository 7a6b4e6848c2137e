"""The Serve adapter: context in, (replicas, state) out; no Ray cluster needed."""

from __future__ import annotations

from dataclasses import dataclass, field

from tierserve.autoscaling import policy as pol
from tierserve.config import ScalingConfig


@dataclass
class Point:
    value: float
    timestamp: float = 0.0


@dataclass
class Ctx:
    current_num_replicas: int
    raw_metrics: dict
    current_time: float
    policy_state: dict = field(default_factory=dict)
    total_queued_requests: float = 0.0
    aggregated_metrics: dict = field(default_factory=dict)
    deployment_name: str = "d"
    target_num_replicas: int | None = None


def test_policy_sums_latest_queue_and_keeps_state(monkeypatch):
    monkeypatch.setattr(pol.QueueDepthPolicy, "_report", lambda *a: None)
    p = pol.QueueDepthPolicy("d", 1, 4, 2.0, 1.0, 10.0)
    metrics = {"queue_depth": {"r1": [Point(0), Point(5)], "r2": [Point(3)]}}
    n, state = p(Ctx(2, metrics, current_time=100.0))
    assert n == 2 and state["tierserve"]["direction"] == "up"
    n, state = p(Ctx(2, metrics, current_time=101.0, policy_state=state))
    assert n == 4  # queue 8 / target 2, after the 1 s delay


def test_aggregated_fallback_and_handle_queue():
    ctx = Ctx(0, {}, 0.0, aggregated_metrics={"queue_depth": {"r": 2.0}}, total_queued_requests=3)
    obs = pol.observe(ctx)
    assert obs.engine_queue == 2.0 and obs.handle_queued == 3.0


def test_serve_config_carries_the_variant_settings():
    scaling = ScalingConfig(min_replicas=1, max_replicas=3, target_queue_per_replica=2,
                            upscale_delay_s=0.5, downscale_delay_s=7)
    cfg = pol.serve_autoscaling_config("v", scaling)
    assert cfg["policy"]["policy_function"] == "tierserve.autoscaling.policy:QueueDepthPolicy"
    assert cfg["policy"]["policy_kwargs"]["downscale_delay_s"] == 7
    assert cfg["upscale_delay_s"] == cfg["downscale_delay_s"] == 0.0
    from ray.serve.config import AutoscalingConfig

    AutoscalingConfig(**cfg)  # Serve accepts it


def test_a_starting_replica_is_not_undone(monkeypatch):
    """Serve's target is 2 while only 1 replica runs yet: holding must keep 2."""
    monkeypatch.setattr(pol.QueueDepthPolicy, "_report", lambda *a: None)
    p = pol.QueueDepthPolicy("d", 1, 2, 2.0, 1.0, 10.0)
    metrics = {"queue_depth": {"r1": [Point(12)]}}
    state = {}
    for t in range(20):
        n, state = p(Ctx(1, metrics, current_time=100.0 + t * 0.1, policy_state=state,
                         target_num_replicas=2))
        assert n == 2
