"""What one replica needs to follow the weight store: plain data, built from the config
at deploy time (the driver reads REDIS_URL) and shipped to the replica."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tierserve.config import TierServeConfig, VariantConfig, WeightsConfig


@dataclass(frozen=True)
class ReplicaWeightsSpec:
    track: str
    lease_key: str
    """One lease per deployment: '<app>.<variant>'."""
    store: str
    root: str
    opener: str
    announce: str
    redis_url: str | None
    """Set only when announcements go over Redis (then the lease does too)."""
    channel_prefix: str
    poll_interval_s: float
    redis_poll_interval_s: float
    lease_ttl_s: float
    lease_wait_s: float
    audit_log: str
    opener_options: dict = field(default_factory=dict)
    """Keyword arguments of the opener's factory (e.g. a key file for encrypted weights)."""

    @property
    def lease_dir(self) -> Path:
        return Path(os.path.expanduser(self.root)) / ".leases"


def track_of(tier_id: str, variant: VariantConfig) -> str:
    return variant.weights.track or tier_id


def tracks(config: TierServeConfig) -> dict[str, list[str]]:
    """Track -> the hot-reloading variants that follow it."""
    found: dict[str, list[str]] = {}
    for tier, variant in config.variants():
        if variant.weights.hot_reload:
            found.setdefault(track_of(tier.id, variant), []).append(variant.name)
    return found


def _uses_redis(weights: WeightsConfig, redis_url: str | None) -> bool:
    return weights.announce != "poll" and bool(redis_url)


def replica_spec(config: TierServeConfig, tier_id: str, variant: VariantConfig,
                 redis_url: str | None, app_name: str | None = None,
                 opener_options: dict | None = None) -> ReplicaWeightsSpec | None:
    """The spec for a variant that opted in to hot reload, else None."""
    if not variant.weights.hot_reload:
        return None
    weights = config.weights
    from tierserve.weights.announce import make_announcer

    # Fails here, at deploy time, when 'redis' is required but no URL is configured.
    make_announcer(weights.announce, redis_url, weights.channel_prefix,
                   weights.poll_interval_s, weights.redis_poll_interval_s)
    app = app_name or config.server.app_name
    return ReplicaWeightsSpec(
        track=track_of(tier_id, variant), lease_key=f"{app}.{variant.name}",
        store=weights.store, root=weights.root, opener=weights.opener,
        announce=weights.announce,
        redis_url=redis_url if _uses_redis(weights, redis_url) else None,
        channel_prefix=weights.channel_prefix, poll_interval_s=weights.poll_interval_s,
        redis_poll_interval_s=weights.redis_poll_interval_s, lease_ttl_s=weights.lease_ttl_s,
        lease_wait_s=weights.lease_wait_s, audit_log=weights.audit_path,
        opener_options=dict(opener_options or {}),
    )
