"""Queue-depth autoscaling as a pure function: (config, observation, state) → ScaleDecision.

The queue is what the engines hold (requests waiting + running in vLLM) plus requests
queued at handles for this deployment. A change of replica count happens only after the
signal has pointed the same way for the configured delay (hysteresis against flapping),
and a downscale is also held off for `downscale_delay_s` after any upscale (cool-down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

DOWNSCALE_HEADROOM = 0.8
"""Scale down only when the queue fits the smaller fleet at 80% of the target, so a queue
sitting right at a boundary does not flip the replica count back and forth."""


@dataclass(frozen=True)
class ScalePolicyConfig:
    min_replicas: int
    max_replicas: int
    target_queue_per_replica: float
    upscale_delay_s: float
    downscale_delay_s: float
    scale_to_zero: bool = False

    @property
    def floor(self) -> int:
        return 0 if self.scale_to_zero else max(self.min_replicas, 1)


@dataclass(frozen=True)
class Observation:
    now: float
    current_replicas: int
    engine_queue: float
    """Sum over running replicas of vLLM waiting + running requests."""
    handle_queued: float = 0.0
    """Requests queued at handles, not yet on any replica (the only signal at zero)."""

    @property
    def total_queue(self) -> float:
        return self.engine_queue + self.handle_queued


@dataclass(frozen=True)
class PolicyState:
    direction: str = "steady"
    """'up' or 'down' while a change waits out its delay; 'steady' otherwise."""
    since: float | None = None
    last_upscale_at: float | None = None
    last_downscale_at: float | None = None


@dataclass(frozen=True)
class ScaleDecision:
    target_replicas: int
    reason: str
    desired_replicas: int
    state: PolicyState

    @property
    def changed(self) -> bool:
        return self.reason.startswith("scale")


def _clamp(config: ScalePolicyConfig, n: int) -> int:
    return max(config.floor, min(config.max_replicas, n))


def desired_replicas(config: ScalePolicyConfig, obs: Observation) -> tuple[int, int]:
    """(replicas wanted to go up, replicas the queue would still fit going down)."""
    q = obs.total_queue
    target = config.target_queue_per_replica
    up = _clamp(config, math.ceil(q / target))
    down = _clamp(config, math.ceil(q / (target * DOWNSCALE_HEADROOM)))
    if q > 0:
        down = max(down, 1)
    return up, down


def _pending(direction: str, obs: Observation, state: PolicyState) -> PolicyState:
    if state.direction == direction and state.since is not None:
        return state
    return replace(state, direction=direction, since=obs.now)


def decide(config: ScalePolicyConfig, obs: Observation, state: PolicyState) -> ScaleDecision:
    current = obs.current_replicas
    up, down = desired_replicas(config, obs)
    q = f"queue={obs.total_queue:g}"
    if current < config.floor or current > config.max_replicas:
        target = _clamp(config, current)
        return ScaleDecision(target, f"scale:bounds({current}->{target})", target, PolicyState())
    if current == 0 and obs.total_queue > 0:
        new = replace(PolicyState(), last_upscale_at=obs.now)
        return ScaleDecision(max(up, 1), f"scale:up-from-zero({q})", max(up, 1), new)
    if up > current:
        return _maybe_up(config, obs, state, up, q)
    if down < current:
        return _maybe_down(config, obs, state, down, q)
    steady = replace(state, direction="steady", since=None)
    return ScaleDecision(current, f"steady({q},replicas={current})", current, steady)


def _maybe_up(config, obs, state, want, q) -> ScaleDecision:
    pending = _pending("up", obs, state)
    waited = obs.now - pending.since
    if waited >= config.upscale_delay_s:
        done = PolicyState(last_upscale_at=obs.now, last_downscale_at=state.last_downscale_at)
        return ScaleDecision(want, f"scale:up({obs.current_replicas}->{want},{q})", want, done)
    reason = f"hold:up-pending({waited:.1f}/{config.upscale_delay_s:g}s,{q})"
    return ScaleDecision(obs.current_replicas, reason, want, pending)


def _maybe_down(config, obs, state, want, q) -> ScaleDecision:
    current = obs.current_replicas
    if state.last_upscale_at is not None and obs.now - state.last_upscale_at < config.downscale_delay_s:
        steady = replace(state, direction="steady", since=None)
        return ScaleDecision(current, f"hold:cooldown-after-upscale({q})", want, steady)
    pending = _pending("down", obs, state)
    waited = obs.now - pending.since
    if waited >= config.downscale_delay_s:
        done = PolicyState(last_upscale_at=state.last_upscale_at, last_downscale_at=obs.now)
        return ScaleDecision(want, f"scale:down({current}->{want},{q})", want, done)
    reason = f"hold:down-pending({waited:.1f}/{config.downscale_delay_s:g}s,{q})"
    return ScaleDecision(current, reason, want, pending)
