"""Traces, metrics and structured logs (docs/operations.md).

Nothing here runs at import time: a replica sets up its own tracer, metric instruments
and log handler in its constructor (`RouterObserver.from_config`,
`TierTelemetry.from_config`).
"""

from tierserve.observability.metrics import ALL_METRICS, MemoryMetrics, MetricSpec
from tierserve.observability.request_observer import RouterObserver
from tierserve.observability.tier_telemetry import TierTelemetry
from tierserve.observability.tracing import Tracing, read_span_file, setup_tracing

__all__ = ["ALL_METRICS", "MemoryMetrics", "MetricSpec", "RouterObserver", "TierTelemetry",
           "Tracing", "read_span_file", "setup_tracing"]
