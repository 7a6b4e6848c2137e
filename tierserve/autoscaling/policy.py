"""Ray Serve custom AutoscalingPolicy adapter around the pure queue-depth decision.

Serve instantiates `QueueDepthPolicy(**policy_kwargs)` once per deployment in the
controller and calls it with an AutoscalingContext on every control-loop tick; replicas
publish `queue_depth` through `record_autoscaling_stats`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from tierserve.autoscaling.decision import (
    Observation,
    PolicyState,
    ScaleDecision,
    ScalePolicyConfig,
    decide,
)

log = logging.getLogger(__name__)

QUEUE_METRIC = "queue_depth"
POLICY_PATH = "tierserve.autoscaling.policy:QueueDepthPolicy"


def latest_queue(ctx) -> float:
    """Sum over replicas of their latest published queue depth."""
    raw = getattr(ctx, "raw_metrics", None) or {}
    series = raw.get(QUEUE_METRIC) or {}
    if series:
        return float(sum(points[-1].value for points in series.values() if points))
    aggregated = getattr(ctx, "aggregated_metrics", None) or {}
    return float(sum((aggregated.get(QUEUE_METRIC) or {}).values()))


def handle_queued(ctx) -> float:
    try:
        return float(getattr(ctx, "total_queued_requests", 0.0) or 0.0)
    except Exception:  # older Serve releases have no handle-queue figure
        return 0.0


def observe(ctx) -> Observation:
    """The policy reasons about Serve's current TARGET: a replica still starting counts,
    or every tick before it is up would look like a reason to undo the upscale."""
    now = ctx.current_time if getattr(ctx, "current_time", None) else time.time()
    target = getattr(ctx, "target_num_replicas", None)
    current = ctx.current_num_replicas if target is None else target
    return Observation(now=now, current_replicas=current,
                       engine_queue=latest_queue(ctx), handle_queued=handle_queued(ctx))


class QueueDepthPolicy:
    def __init__(self, deployment: str = "", min_replicas: int = 1, max_replicas: int = 1,
                 target_queue_per_replica: float = 4.0, upscale_delay_s: float = 1.0,
                 downscale_delay_s: float = 30.0, scale_to_zero: bool = False):
        self.deployment = deployment
        self.config = ScalePolicyConfig(min_replicas, max_replicas, target_queue_per_replica,
                                        upscale_delay_s, downscale_delay_s, scale_to_zero)
        self._reporter = None
        self._last_reported: tuple | None = None

    def __call__(self, ctx) -> tuple[int, dict]:
        state = PolicyState(**(ctx.policy_state or {}).get("tierserve", {}))
        decision = decide(self.config, observe(ctx), state)
        self._report(ctx, decision)
        return decision.target_replicas, {"tierserve": asdict(decision.state)}

    def _report(self, ctx, decision: ScaleDecision) -> None:
        key = (decision.target_replicas, ctx.current_num_replicas, decision.reason.split("(")[0])
        if key == self._last_reported:
            return
        self._last_reported = key
        if decision.changed:
            log.info("autoscaling %s: %s", self.deployment, decision.reason)
        try:
            from tierserve.autoscaling.journal import report

            self._reporter = report(self._reporter, self.deployment or ctx.deployment_name,
                                    ctx.current_num_replicas, decision)
        except Exception as err:  # observability must never break scaling
            log.warning("autoscaling report failed: %s", err)


def serve_autoscaling_config(deployment: str, scaling) -> dict:
    """The Serve `autoscaling_config` for a variant's ScalingConfig."""
    return {
        "min_replicas": scaling.min_replicas,
        "max_replicas": scaling.max_replicas,
        "initial_replicas": scaling.start_replicas,
        # Replicas push their queue every 0.5 s; the policy reads the latest value.
        "metrics_interval_s": 0.5,
        "look_back_period_s": 2.0,
        # Our policy applies its own delays; Serve's must not add to them.
        "upscale_delay_s": 0.0,
        "downscale_delay_s": 0.0,
        "policy": {
            "policy_function": POLICY_PATH,
            "policy_kwargs": {
                "deployment": deployment,
                "min_replicas": scaling.min_replicas,
                "max_replicas": scaling.max_replicas,
                "target_queue_per_replica": scaling.target_queue_per_replica,
                "upscale_delay_s": scaling.upscale_delay_s,
                "downscale_delay_s": scaling.downscale_delay_s,
                "scale_to_zero": scaling.scale_to_zero,
            },
        },
    }
