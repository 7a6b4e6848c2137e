"""Replica choice inside one tier deployment, as a pure function on data.

Candidates with their load, plus what is known about the request (the replica that
served its conversation last, how many leading prompt blocks each replica served
recently) → replicas in order of preference and the reason. The Ray Serve request
router (tierserve/deployments/request_router.py) is a thin adapter around this.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tierserve.config import ReplicaRoutingConfig

POLICIES = ("power_of_two", "affinity", "prefix", "affinity+prefix")

# Why the first replica was chosen.
AFFINITY = "affinity"
PREFIX = "prefix"
LEAST_LOADED = "least_loaded"
POWER_OF_TWO = "power_of_two"
# What gave way on the way there (Ranking.gave_way).
AFFINITY_GONE = "affinity_gone"
AFFINITY_OVERLOADED = "affinity_overloaded"
PREFIX_OVERLOADED = "prefix_overloaded"


@dataclass(frozen=True)
class ReplicaLoad:
    replica: str
    queue: float
    """Requests at the replica (waiting + running)."""
    kv_cache_usage: float = 0.0
    """Fraction of its KV-cache blocks in use, 0..1."""


@dataclass(frozen=True)
class ScoringParams:
    policy: str = "affinity+prefix"
    balance_margin: float = 4.0
    kv_cache_high: float = 0.95
    min_prefix_gain_blocks: int = 2

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown replica routing policy {self.policy!r}; one of {POLICIES}")

    @classmethod
    def from_config(cls, config: ReplicaRoutingConfig, policy: str | None = None) -> ScoringParams:
        return cls(policy or config.policy, config.balance_margin_requests,
                   config.kv_cache_high, config.min_prefix_gain_blocks)

    @property
    def uses_affinity(self) -> bool:
        return self.policy in ("affinity", "affinity+prefix")

    @property
    def uses_prefix(self) -> bool:
        return self.policy in ("prefix", "affinity+prefix")


@dataclass(frozen=True)
class Signals:
    """What the router knows about one request."""

    affinity: str | None = None
    """The replica that served this conversation last (None: new or no conversation)."""
    prefix_matches: Mapping[str, int] = field(default_factory=dict)
    """Leading prompt blocks each replica served recently."""


@dataclass(frozen=True)
class Ranking:
    replicas: tuple[str, ...]
    """Replicas to try, best first."""
    reason: str
    """Why the first one: affinity | prefix | least_loaded | power_of_two."""
    gave_way: tuple[str, ...] = ()
    """Preferences skipped on the way: affinity_gone, affinity_overloaded, prefix_overloaded."""
    matched_blocks: int = 0
    """Prompt blocks the first replica is known to hold."""

    @property
    def first(self) -> str | None:
        return self.replicas[0] if self.replicas else None

    @property
    def label(self) -> str:
        """reason plus what gave way, e.g. 'least_loaded(affinity_gone)'."""
        return f"{self.reason}({','.join(self.gave_way)})" if self.gave_way else self.reason


def _within_balance(chosen: ReplicaLoad, least: ReplicaLoad, params: ScoringParams) -> bool:
    if chosen.queue - least.queue > params.balance_margin:
        return False
    return not (chosen.kv_cache_usage >= params.kv_cache_high
                and least.kv_cache_usage < params.kv_cache_high)


def _ordered(first: ReplicaLoad, by_load: Sequence[ReplicaLoad]) -> tuple[str, ...]:
    return (first.replica, *(c.replica for c in by_load if c.replica != first.replica))


def _power_of_two(loads: Sequence[ReplicaLoad], rng: random.Random) -> Ranking:
    picked = rng.sample(list(loads), k=min(2, len(loads)))
    picked.sort(key=lambda c: c.queue)
    return Ranking(tuple(c.replica for c in picked), POWER_OF_TWO)


def rank_replicas(loads: Sequence[ReplicaLoad], signals: Signals, params: ScoringParams,
                  rng: random.Random | None = None) -> Ranking:
    """Order candidate replicas for one request.

    affinity → prefix → least loaded; a preference gives way when its replica's queue
    exceeds the least-loaded one's by more than the balance margin, or its KV cache is
    nearly full while another's is not. The least-loaded order breaks ties by the longer
    prefix match, then at random (so new conversations spread out).
    """
    rng = rng or random.Random()
    if not loads:
        return Ranking((), LEAST_LOADED)
    if params.policy == POWER_OF_TWO:
        return _power_of_two(loads, rng)
    matches = signals.prefix_matches if params.uses_prefix else {}
    noise = {c.replica: rng.random() for c in loads}
    by_load = sorted(loads, key=lambda c: (c.queue, c.kv_cache_usage,
                                           -matches.get(c.replica, 0), noise[c.replica]))
    least = by_load[0]
    gave_way: list[str] = []
    if params.uses_affinity and signals.affinity is not None:
        remembered = next((c for c in loads if c.replica == signals.affinity), None)
        if remembered is None:
            gave_way.append(AFFINITY_GONE)
        elif _within_balance(remembered, least, params):
            return Ranking(_ordered(remembered, by_load), AFFINITY, (),
                           matches.get(remembered.replica, 0))
        else:
            gave_way.append(AFFINITY_OVERLOADED)
    if matches:
        best = max(by_load, key=lambda c: matches.get(c.replica, 0))  # stable: lightest wins ties
        gain = matches.get(best.replica, 0) - matches.get(least.replica, 0)
        if gain >= params.min_prefix_gain_blocks:
            if _within_balance(best, least, params):
                return Ranking(_ordered(best, by_load), PREFIX, tuple(gave_way),
                               matches.get(best.replica, 0))
            gave_way.append(PREFIX_OVERLOADED)
    held = matches.get(least.replica, 0)
    # Among equally loaded replicas the longer match won the tie: that is a prefix choice.
    won_tie = matches and held - min(matches.get(c.replica, 0) for c in loads) >= \
        params.min_prefix_gain_blocks
    return Ranking(_ordered(least, by_load), PREFIX if won_tie else LEAST_LOADED,
                   tuple(gave_way), held)


class RoutingTally:
    """Counts of routing outcomes for metrics and benchmarks (pure, in-process)."""

    def __init__(self) -> None:
        self.decisions: Counter[str] = Counter()
        self.affinity: Counter[str] = Counter()

    def decided(self, ranking: Ranking) -> None:
        self.decisions[ranking.label] += 1

    def routed(self, remembered: str | None, served_by: str) -> str:
        """Affinity outcome of one routed request: 'hit' (served by the remembered
        replica), 'moved' (another one) or 'new' (nothing remembered)."""
        outcome = "new" if remembered is None else ("hit" if remembered == served_by else "moved")
        self.affinity[outcome] += 1
        return outcome

    @property
    def affinity_hit_rate(self) -> float | None:
        known = self.affinity["hit"] + self.affinity["moved"]
        return self.affinity["hit"] / known if known else None

    def snapshot(self) -> dict:
        return {"decisions": dict(self.decisions), "affinity": dict(self.affinity),
                "affinity_hit_rate": self.affinity_hit_rate}


class TallyRegistry:
    """The routers' tallies in this process, by deployment name.

    Serve constructs request routers itself (from a class path and JSON kwargs), so
    nothing can be injected into them; this registry is how a benchmark or a debugging
    session in the same process reads what they decided.
    """

    def __init__(self) -> None:
        self._by_deployment: dict[str, RoutingTally] = {}

    def get(self, deployment: str) -> RoutingTally:
        return self._by_deployment.setdefault(deployment, RoutingTally())

    def snapshot(self) -> dict[str, dict]:
        return {name: tally.snapshot() for name, tally in self._by_deployment.items()}


PROCESS_TALLIES = TallyRegistry()
