"""The Ray Serve request router of tier deployments: a thin adapter.

Serve runs one instance per (deployment, handle process) — for tier deployments, inside
each router-ingress replica. For every request it asks `choose_replicas`, which feeds the
pure `rank_replicas` (tierserve/router/replica_scoring.py) with:
  - the conversation's last replica, from the context store (Redis: all router replicas
    agree), looked up once per request;
  - leading prompt blocks each replica served recently (PrefixIndex, bounded);
  - each replica's queue (Serve's queue-length cache, else the replica's routing stats)
    and KV-cache usage (its `record_routing_stats`).
When the replica accepts, `on_request_routed` records the choice (affinity only when it
changed, prefix blocks always) and counts it.

This is the only module that touches Serve's request-router API; it is written against
Ray 2.60 (CI) and the names it uses exist in 2.58.1 (the GPU kit).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ray.serve.config import RequestRouterConfig

try:  # the public re-exports (Ray >= 2.46)
    from ray.serve.request_router import (
        LocalityMixin,
        MultiplexMixin,
        PendingRequest,
        ReplicaID,
        RequestRouter,
        RunningReplica,
    )
except ImportError:  # pragma: no cover - older layouts
    from ray.serve._private.common import ReplicaID
    from ray.serve._private.request_router.common import PendingRequest
    from ray.serve._private.request_router.replica_wrapper import RunningReplica
    from ray.serve._private.request_router.request_router import (
        LocalityMixin,
        MultiplexMixin,
        RequestRouter,
    )

from tierserve.config import ContextConfig, ReplicaRoutingConfig, VariantConfig
from tierserve.context.store import ContextUnavailable
from tierserve.deployments.engine import GenerationRequest
from tierserve.observability.metrics import MetricSpec, RayMetrics, Recorder
from tierserve.router.affinity import AffinityStore, make_affinity
from tierserve.router.prefix_index import PrefixIndex
from tierserve.router import replica_scoring
from tierserve.router.replica_scoring import (
    POLICIES,
    Ranking,
    ReplicaLoad,
    ScoringParams,
    Signals,
    rank_replicas,
)

log = logging.getLogger(__name__)

ROUTER_CLASS = "tierserve.deployments.request_router.ReplicaAwareRouter"
MAX_PENDING = 10_000
"""Routing states kept for requests between choice and acceptance; a retried request keeps
its state (one affinity lookup), a cancelled one ages out behind newer ones."""


def request_router_config(tier_id: str, variant: VariantConfig,
                          context: ContextConfig) -> RequestRouterConfig | None:
    """Serve's request-router config for a variant; None keeps Serve's default router
    (the `power_of_two` policy)."""
    routing = variant.replica_routing
    if routing.policy == "power_of_two":
        return None
    return RequestRouterConfig(
        request_router_class=ROUTER_CLASS,
        request_router_kwargs={"tier": tier_id, "replica_routing": routing.model_dump(mode="json"),
                               "context": context.model_dump(mode="json")},
        request_routing_stats_period_s=routing.stats_period_s,
    )


def _generation_request(pending: PendingRequest | None) -> GenerationRequest | None:
    if pending is None:
        return None
    for arg in (*pending.args, *pending.kwargs.values()):
        if isinstance(arg, GenerationRequest):
            return arg
    return None


@dataclass
class _Routing:
    """What was decided for one request, kept until a replica accepts it."""

    params: ScoringParams
    remembered: str | None = None
    looked_up: bool = False
    ranking: Ranking | None = None


REPLICA_ROUTING_METRICS = (
    MetricSpec("tierserve_replica_routing_decisions", "counter",
               "Replica choices of the request router by policy and reason (what chose, "
               "what gave way: affinity, prefix, least_loaded(affinity_gone), ...).",
               ("tier", "deployment", "policy", "reason")),
    MetricSpec("tierserve_replica_affinity_turns", "counter",
               "Conversation turns by affinity outcome: hit (served by the remembered "
               "replica), moved, new, unavailable (context store down).",
               ("tier", "deployment", "outcome")),
    MetricSpec("tierserve_replica_prefix_cache_hit_ratio", "gauge",
               "vLLM prefix-cache hit ratio of one replica since it started (tokens hit / "
               "tokens queried, 0..1), from its routing stats.", ("tier", "deployment", "replica")),
    MetricSpec("tierserve_replica_prefix_index_blocks", "gauge",
               "Prompt blocks one router remembers for prefix matching (bounded by "
               "index_max_blocks).", ("tier", "deployment")),
)


class ReplicaAwareRouter(LocalityMixin, MultiplexMixin, RequestRouter):
    """Conversation-, prefix- and load-aware replica choice (docs/replica-routing.md).

    No FIFOMixin: a replica found for one request must serve that request, not the
    oldest pending one, or affinity would hand it to another conversation.
    """

    def initialize_state(self, tier: str = "", replica_routing: dict | None = None,
                         context: dict | None = None, **_: Any) -> None:
        self._settings = ReplicaRoutingConfig.model_validate(replica_routing or {})
        self._context_config = ContextConfig.model_validate(context or {})
        self._deployment = self._deployment_id.name
        self._index = PrefixIndex(self._settings.index_max_blocks, self._settings.index_ttl_s)
        self._rng = random.Random()
        self._affinity: AffinityStore | None = None
        self._routing: OrderedDict[str, _Routing] = OrderedDict()
        self._background: set[asyncio.Task] = set()
        # Serve pickles this module by value: a registry imported by name would be a
        # private copy, so reach it through its (by-reference) module.
        self._tally = replica_scoring.PROCESS_TALLIES.get(self._deployment)
        self._metrics = Recorder(RayMetrics(), REPLICA_ROUTING_METRICS)
        self._tags = {"tier": tier, "deployment": self._deployment}

    # -- choosing --------------------------------------------------------------------

    def _params(self, request: GenerationRequest) -> ScoringParams:
        policy = request.routing_policy if request.routing_policy in POLICIES else None
        return ScoringParams.from_config(self._settings, policy)

    def _state(self, pending: PendingRequest, request: GenerationRequest) -> _Routing:
        key = pending.metadata.internal_request_id
        state = self._routing.get(key)
        if state is None:
            state = self._routing[key] = _Routing(self._params(request))
            while len(self._routing) > MAX_PENDING:
                self._routing.popitem(last=False)
        return state

    def _load(self, replica: RunningReplica) -> ReplicaLoad:
        stats = replica.routing_stats or {}
        queue = self._replica_queue_len_cache.get(replica.replica_id)
        if queue is None:
            queue = stats.get("queue_depth", 0)
        return ReplicaLoad(replica.replica_id.unique_id, float(queue),
                           float(stats.get("kv_cache_usage", 0.0)))

    def _store(self) -> AffinityStore:
        if self._affinity is None:  # created on first use, on the router's own event loop
            self._affinity = make_affinity(self._context_config, self._settings, self._deployment)
        return self._affinity

    async def _lookup(self, conversation: str) -> str | None:
        try:
            return await self._store().lookup(conversation)
        except ContextUnavailable:
            self._tally.affinity["unavailable"] += 1
            self._metrics.record("tierserve_replica_affinity_turns", 1,
                                 {**self._tags, "outcome": "unavailable"})
        except ValueError:
            log.warning("ignoring malformed conversation key %r", conversation)
        return None

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # we rank all candidates
        request = _generation_request(pending_request)
        hinted = request is not None and (request.conversation or request.prefix_blocks)
        if not candidate_replicas or (len(candidate_replicas) == 1 and not hinted):
            return [list(candidate_replicas)] if candidate_replicas else []
        loads = [self._load(r) for r in candidate_replicas]
        if request is None:  # stats(), info(): no hints, least loaded
            ranking = rank_replicas(loads, Signals(), ScoringParams("affinity"), self._rng)
        else:
            state = self._state(pending_request, request)
            if state.params.uses_affinity and request.conversation and not state.looked_up:
                state.remembered = await self._lookup(request.conversation)
                state.looked_up = True
            matches = {}
            if state.params.uses_prefix and request.prefix_blocks:
                matches = self._index.match(request.prefix_blocks, [c.replica for c in loads])
            ranking = rank_replicas(loads, Signals(state.remembered, matches), state.params,
                                    self._rng)
            state.ranking = ranking
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        return [[by_id[replica]] for replica in ranking.replicas]

    # -- recording -------------------------------------------------------------------

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID,
                          result: Any) -> None:
        state = self._routing.pop(pending_request.metadata.internal_request_id, None)
        request = _generation_request(pending_request)
        if state is None or request is None or state.ranking is None:
            return
        served = replica_id.unique_id
        self._tally.decided(state.ranking)
        self._metrics.record("tierserve_replica_routing_decisions", 1, {
            **self._tags, "policy": state.params.policy, "reason": state.ranking.label})
        if request.conversation and state.params.uses_affinity:
            outcome = self._tally.routed(state.remembered, served)
            self._metrics.record("tierserve_replica_affinity_turns", 1,
                                 {**self._tags, "outcome": outcome})
            if state.remembered != served:
                self._spawn(self._remember(request.conversation, served))
        if request.prefix_blocks:
            self._index.record(served, request.prefix_blocks)
            self._metrics.record("tierserve_replica_prefix_index_blocks", len(self._index),
                                 self._tags)
        self._publish_cache_hit_rate(replica_id)

    async def _remember(self, conversation: str, replica: str) -> None:
        try:
            await self._store().remember(conversation, replica)
        except ContextUnavailable:
            pass  # the next turn routes by prefix and load, and records again
        except Exception:
            log.exception("recording replica affinity failed")

    def _spawn(self, coro) -> None:
        task = self._event_loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _publish_cache_hit_rate(self, replica_id: ReplicaID) -> None:
        replica = self._replicas.get(replica_id)
        stats = (replica.routing_stats if replica is not None else None) or {}
        queries = stats.get("prefix_cache_queries", 0)
        if queries:
            self._metrics.record("tierserve_replica_prefix_cache_hit_ratio",
                                 stats.get("prefix_cache_hits", 0) / queries,
                                 {**self._tags, "replica": replica_id.unique_id})

    # -- replicas coming and going -----------------------------------------------------

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        index = getattr(self, "_index", None)
        if index is not None:
            index.retain(r.replica_id.unique_id for r in replicas)

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        index = getattr(self, "_index", None)
        if index is not None:
            index.drop_replica(replica_id.unique_id)
