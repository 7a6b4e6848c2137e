"""In-process tier deployments on FakeEngines, for benchmarks of the router's own path."""

from __future__ import annotations

from tierserve.config import TierServeConfig
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment


async def started_fake_tiers(config: TierServeConfig, answer_tokens: int,
                             max_model_len: int = 4096) -> dict[str, TierDeployment]:
    """One started TierDeployment per variant of `config`, each answering `answer_tokens`
    tokens at once; keyed by variant name (what LocalTierClient takes)."""
    tiers = {}
    for tier, variant in config.variants():
        dep = TierDeployment(tier.id, variant.name, {"max_model_len": max_model_len},
                             engine_factory=lambda n, a: FakeEngine(
                                 n, max_model_len, answer_tokens=answer_tokens))
        await dep.start()
        tiers[variant.name] = dep
    return tiers
