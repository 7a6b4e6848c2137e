"""Which tier and variant serve a request (pure: config + request data → RouteDecision)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tierserve.config import TierServeConfig
from tierserve.errors import ModelNotFound
from tierserve.router.classifiers import Classifier
from tierserve.router.spillover import LoadSnapshot, spill

AUTO = "auto"


@dataclass(frozen=True)
class RouteDecision:
    tier: str
    variant: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 1.0

    def as_dict(self) -> dict:
        return {
            "tier": self.tier,
            "deployment": self.variant,
            "reason": self.reason,
            "scores": self.scores,
            "confidence": self.confidence,
        }


def model_ids(config: TierServeConfig) -> list[str]:
    """Every id a client may put in `model`: auto, the tiers, then the variants."""
    return [AUTO, *config.tier_ids, *(v.name for _, v in config.variants())]


def nearest_tier(config: TierServeConfig, wanted: str) -> str:
    """`wanted` if configured, else the closest configured tier (prefer the larger one)."""
    order = ["7b", "33b", "236b"]
    present = config.tier_ids
    if wanted in present:
        return wanted
    rank = order.index(wanted)
    return min(present, key=lambda t: (abs(order.index(t) - rank), -order.index(t)))


def _variant_for(config: TierServeConfig, tier_id: str, latency_critical: bool) -> str:
    tier = config.tier(tier_id)
    return (tier.latency if latency_critical else tier.default).name


def decide(
    config: TierServeConfig,
    classifier: Classifier,
    model: str,
    messages: list[dict],
    latency_critical: bool = False,
    loads: Mapping[str, LoadSnapshot] | None = None,
    now: float = 0.0,
) -> RouteDecision:
    """Pinned variant → that variant; pinned tier → its variant; `auto` → the classifier,
    then spillover when `loads` (per-variant load snapshots taken at monotonic `now`) say
    the chosen variant is saturated (routing.spillover)."""
    pinned = config.find_variant(model)
    if pinned is not None:
        tier, variant = pinned
        return RouteDecision(tier.id, variant.name, "pinned:variant")
    if model in config.tier_ids:
        variant = _variant_for(config, model, latency_critical)
        suffix = "+latency" if latency_critical else ""
        return RouteDecision(model, variant, f"pinned:tier{suffix}")
    if model != AUTO:
        raise ModelNotFound(model, model_ids(config))
    verdict = classifier.classify(messages)
    tier_id = nearest_tier(config, verdict.tier)
    reason = verdict.reason
    if tier_id != verdict.tier:
        reason += f";fallback:{verdict.tier}->{tier_id}"
    if latency_critical:
        reason += ";latency:critical"
    variant = _variant_for(config, tier_id, latency_critical)
    decision = RouteDecision(tier_id, variant, reason, verdict.scores, verdict.confidence)
    if loads:
        decision = spill(decision, config, loads, now, latency_critical)
    return decision
