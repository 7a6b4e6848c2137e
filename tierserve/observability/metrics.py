"""tierserve's metrics: one catalogue, recorded through Ray's metrics API.

`ray.util.metrics` instruments live in each replica process; Ray exports them (prefixed
`ray_`, counters suffixed `_total`) on every node's Prometheus endpoint and in the Ray
dashboard. Tests inject `MemoryMetrics` instead; `NullMetrics` turns recording off.
Names carry their unit (`_seconds`, `_tokens`, `_requests`, `_ratio`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["counter", "gauge", "histogram"]

TTFT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TPOT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
RATE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)

ROUTE = ("tier", "deployment")
REPLICA = ("tier", "deployment", "replica")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    description: str
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...] = ()

    @property
    def prometheus_name(self) -> str:
        """The series name on Ray's Prometheus endpoint."""
        suffix = "_total" if self.kind == "counter" else ""
        return f"ray_{self.name}{suffix}"


ROUTER_METRICS = (
    MetricSpec("tierserve_requests", "counter",
               "Requests finished by the router, by endpoint, tier, deployment and HTTP status "
               "(499: the client went away).", ("endpoint", *ROUTE, "status")),
    MetricSpec("tierserve_request_errors", "counter",
               "Requests that failed (4xx/5xx), by endpoint, tier, deployment, status and "
               "error type; tier 'none' when the request failed before routing.",
               ("endpoint", *ROUTE, "status", "error_type")),
    MetricSpec("tierserve_route_decisions", "counter",
               "Routing decisions by tier, deployment and reason kind (payloads such as token "
               "counts are stripped from the reason).", (*ROUTE, "reason")),
    MetricSpec("tierserve_time_to_first_token_seconds", "histogram",
               "Seconds from the router receiving a request to its first generated chunk.",
               ROUTE, TTFT_BUCKETS_S),
    MetricSpec("tierserve_time_per_output_token_seconds", "histogram",
               "Seconds per generated token after the first (one observation per request).",
               ROUTE, TPOT_BUCKETS_S),
    MetricSpec("tierserve_request_duration_seconds", "histogram",
               "Seconds from the router receiving a request to its last chunk.",
               ("endpoint", *ROUTE), DURATION_BUCKETS_S),
    MetricSpec("tierserve_output_tokens_per_second", "histogram",
               "Decode speed of one request: completion tokens / seconds after the first.",
               ROUTE, RATE_BUCKETS),
    MetricSpec("tierserve_prompt_tokens", "counter",
               "Prompt tokens of finished requests (counted by the tier's tokenizer).", ROUTE),
    MetricSpec("tierserve_completion_tokens", "counter",
               "Generated tokens; rate() of it is the platform's output tokens/s.", ROUTE),
    MetricSpec("tierserve_context_store_errors", "counter",
               "Context-store failures the router served around (operation: load, record).",
               ("operation",)),
)

TIER_METRICS = (
    MetricSpec("tierserve_queue_depth_requests", "gauge",
               "Engine queue of one replica: requests waiting + running.", REPLICA),
    MetricSpec("tierserve_queue_waiting_requests", "gauge",
               "Requests waiting in one replica's engine scheduler.", REPLICA),
    MetricSpec("tierserve_queue_running_requests", "gauge",
               "Requests running in one replica's engine.", REPLICA),
    MetricSpec("tierserve_kv_cache_usage_ratio", "gauge",
               "Fraction (0..1) of one replica's KV-cache blocks in use.", REPLICA),
    MetricSpec("tierserve_weight_version", "gauge",
               "Weight version loaded by one replica (0: the deployed checkpoint).", REPLICA),
    MetricSpec("tierserve_engine_time_to_first_token_seconds", "histogram",
               "Seconds from the tier replica receiving a generation to the engine's first "
               "chunk (router TTFT minus this = routing + handle overhead).",
               ROUTE, TTFT_BUCKETS_S),
    MetricSpec("tierserve_engine_generations", "counter",
               "Generations a tier replica finished, by outcome (finished, aborted, error).",
               (*ROUTE, "outcome")),
)

AUTOSCALING_METRICS = (
    MetricSpec("tierserve_autoscaling_current_replicas", "gauge",
               "Replicas running now (autoscaled deployments; from the Serve controller).",
               ("deployment",)),
    MetricSpec("tierserve_autoscaling_target_replicas", "gauge",
               "Replicas the queue-depth policy asks for.", ("deployment",)),
    MetricSpec("tierserve_autoscaling_desired_replicas", "gauge",
               "Replicas the queue alone would justify (before delays).", ("deployment",)),
    MetricSpec("tierserve_autoscaling_decisions", "counter",
               "Policy outcomes by kind (scale, hold, steady).", ("deployment", "kind")),
)
"""Recorded by tierserve/autoscaling/journal.py; listed here so the catalogue is complete."""

ALL_METRICS = ROUTER_METRICS + TIER_METRICS + AUTOSCALING_METRICS


class Instrument(Protocol):
    def record(self, value: float, tags: Mapping[str, str]) -> None: ...


class MetricsBackend(Protocol):
    def instrument(self, spec: MetricSpec) -> Instrument: ...


class _RayInstrument:
    __slots__ = ("record",)

    def __init__(self, spec: MetricSpec):
        from ray.util import metrics

        if spec.kind == "counter":
            self.record = metrics.Counter(spec.name, spec.description, spec.tag_keys).inc
        elif spec.kind == "gauge":
            self.record = metrics.Gauge(spec.name, spec.description, spec.tag_keys).set
        else:
            self.record = metrics.Histogram(spec.name, spec.description,
                                            list(spec.boundaries), spec.tag_keys).observe


class RayMetrics:
    """Instruments of `ray.util.metrics` (about 1-2 us per record inside a Ray worker)."""

    def instrument(self, spec: MetricSpec) -> Instrument:
        return _RayInstrument(spec)


class _NullInstrument:
    def record(self, value: float, tags: Mapping[str, str]) -> None:
        pass


class NullMetrics:
    def instrument(self, spec: MetricSpec) -> Instrument:
        return _NullInstrument()


class MemoryMetrics:
    """Keeps every recorded value in memory, for unit tests."""

    def __init__(self):
        self.values: dict[tuple[str, tuple], list[float]] = defaultdict(list)

    def instrument(self, spec: MetricSpec) -> Instrument:
        outer = self

        class _Memory:
            def record(self, value: float, tags: Mapping[str, str]) -> None:
                missing = set(spec.tag_keys) - set(tags)
                if missing:
                    raise ValueError(f"{spec.name}: missing tags {sorted(missing)}")
                outer.values[(spec.name, tuple(sorted(tags.items())))].append(float(value))

        return _Memory()

    def series(self, name: str, **tags: str) -> list[list[float]]:
        """Recorded values of every series of `name` whose tags include `tags`."""
        return [v for (n, t), v in self.values.items()
                if n == name and set(tags.items()) <= set(t)]

    def total(self, name: str, **tags: str) -> float:
        return sum(sum(v) for v in self.series(name, **tags))

    def last(self, name: str, **tags: str) -> float | None:
        found = self.series(name, **tags)
        return found[-1][-1] if found else None


class Recorder:
    """The instruments of a catalogue, by name, on one backend."""

    def __init__(self, backend: MetricsBackend, specs: tuple[MetricSpec, ...]):
        self._by_name = {spec.name: backend.instrument(spec) for spec in specs}

    def record(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        self._by_name[name].record(value, tags)


def reason_kind(reason: str) -> str:
    """A routing reason without its payloads, so the label has few values:
    'rules:simple(lookup,tokens=5);latency:critical' -> 'rules:simple;latency:critical'."""
    return ";".join(part.split("(", 1)[0] for part in reason.split(";") if part)


def backend_for(enabled: bool) -> MetricsBackend:
    return RayMetrics() if enabled else NullMetrics()
