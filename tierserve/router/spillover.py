"""Load-aware spillover (pure): when the variant chosen for an `auto` request is saturated
and the classifier was not sure, move the request to the neighbouring tier.

"Saturated" reads the engine's own queue: requests waiting (not yet running) or KV-cache
usage, from a load snapshot taken at most `stale_after_s` ago. The neighbour must be
known and not saturated itself, and the classifier must have given it some weight
(`min_neighbour_score`), so a request it scored as clearly simple never climbs to 236b and
a clearly hard one never drops to 7b. Spillover says so in the route reason, e.g.
`...;spill:236b->33b(waiting=12)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierserve.config import SpilloverConfig, TierServeConfig
    from tierserve.router.decision import RouteDecision


@dataclass(frozen=True)
class LoadSnapshot:
    """One variant's engine load at time `at` (monotonic seconds)."""

    waiting: int
    running: int
    kv_cache_usage: float
    at: float


def is_fresh(load: LoadSnapshot | None, now: float, s: SpilloverConfig) -> bool:
    return load is not None and now - load.at <= s.stale_after_s


def is_saturated(load: LoadSnapshot, s: SpilloverConfig) -> bool:
    return load.waiting >= s.max_waiting or load.kv_cache_usage >= s.max_kv_cache_usage


def _variant(config: TierServeConfig, tier_id: str, latency_critical: bool) -> str:
    tier = config.tier(tier_id)
    return (tier.latency if latency_critical else tier.default).name


def spill(
    decision: RouteDecision,
    config: TierServeConfig,
    loads: Mapping[str, LoadSnapshot],
    now: float,
    latency_critical: bool = False,
) -> RouteDecision:
    """`decision`, or the same request moved to a neighbouring tier when its variant is
    saturated and the confidence allows."""
    s = config.routing.spillover
    if not s.enabled or decision.confidence >= s.max_confidence:
        return decision
    here = loads.get(decision.variant)
    if not is_fresh(here, now, s) or not is_saturated(here, s):
        return decision
    order = config.tier_ids
    at = order.index(decision.tier)
    candidates = []
    for j in (at - 1, at + 1):
        if not 0 <= j < len(order):
            continue
        tier_id = order[j]
        score = decision.scores.get(tier_id, 0.0)
        variant = _variant(config, tier_id, latency_critical)
        load = loads.get(variant)
        if score >= s.min_neighbour_score and is_fresh(load, now, s) and not is_saturated(load, s):
            candidates.append((score, -load.waiting, tier_id, variant))
    if not candidates:
        return decision
    _, _, tier_id, variant = max(candidates)
    reason = f"{decision.reason};spill:{decision.tier}->{tier_id}(waiting={here.waiting})"
    confidence = decision.scores.get(tier_id, decision.confidence)
    return replace(decision, tier=tier_id, variant=variant, reason=reason, confidence=confidence)
