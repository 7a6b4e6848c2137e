"""What a tier replica records: the generation's spans (continuing the router's trace from
the W3C context on the request), engine TTFT and outcome metrics, and its gauges (engine
queue, KV cache, weight version) refreshed by a periodic task.

Spans in the tier replica process, under the router's `router.dispatch`:
    tier.generate (server)        deployment, replica, request id
      engine.generate             tokens in/out, engine TTFT, finish reason
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from tierserve.config import ObservabilityConfig
from tierserve.observability.logging import bind_request, configure_logging
from tierserve.observability.metrics import TIER_METRICS, MetricsBackend, Recorder, backend_for
from tierserve.observability.tracing import Tracing, ids_of, mark_error, setup_tracing

log = logging.getLogger(__name__)


class TierTelemetry:
    def __init__(self, tier: str = "", deployment: str = "", replica: str = "",
                 tracing: Tracing | None = None, backend: MetricsBackend | None = None,
                 interval_s: float = 2.0, clock: Callable[[], float] = time.perf_counter):
        self.tracing = tracing or Tracing.disabled()
        self.interval_s = interval_s
        self.metrics = Recorder(backend, TIER_METRICS) if backend is not None else None
        self.clock = clock
        self.route_tags = {"tier": tier, "deployment": deployment}
        self.replica_tags = {**self.route_tags, "replica": replica}
        self._task: asyncio.Task | None = None

    @classmethod
    def disabled(cls) -> TierTelemetry:
        return cls()

    @classmethod
    def from_config(cls, config: ObservabilityConfig | dict | None, tier: str, deployment: str,
                    replica: str) -> TierTelemetry:
        """A tier replica's telemetry; also routes its logs through the configured format."""
        if not isinstance(config, ObservabilityConfig):
            config = ObservabilityConfig.model_validate(config or {})
        configure_logging(config, "tier")
        return cls(tier, deployment, replica, setup_tracing(config, "tier"),
                   backend_for(config.metrics), config.metrics_interval_s)

    @property
    def active(self) -> bool:
        return self.tracing.enabled or self.metrics is not None

    def watch(self, request, stream: AsyncIterator) -> AsyncIterator:
        """`stream` itself when nothing is recorded, else a pass-through that traces it."""
        return self._watched(request, stream) if self.active else stream

    async def _watched(self, request, stream: AsyncIterator) -> AsyncIterator:
        began = self.clock()
        spans = self._start_spans(request)
        first_at, last, outcome, error = None, None, "aborted", None
        try:
            async for chunk in stream:
                if first_at is None:
                    first_at = self.clock()
                last = chunk
                yield chunk
            outcome = "finished"
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as err:
            outcome, error = "error", err
            raise
        finally:
            ttft = first_at - began if first_at is not None else None
            if self.metrics is not None:
                self._record(outcome, ttft)
            if spans is not None:
                _end_spans(spans, last, ttft, outcome, error)

    def _start_spans(self, request):
        bind_request(request_id=request.request_id)
        if not self.tracing.enabled:
            return None
        parent = self.tracing.extract(request.trace_context)
        outer = self.tracing.start_span("tier.generate", parent, kind="server", attributes={
            "tierserve.request_id": request.request_id,
            "tierserve.tier": self.route_tags["tier"],
            "tierserve.deployment": self.route_tags["deployment"],
            "tierserve.replica": self.replica_tags["replica"]})
        inner = self.tracing.start_span("engine.generate", outer)
        trace_id, span_id = ids_of(outer)
        if trace_id:
            bind_request(trace_id=trace_id, span_id=span_id)
        return outer, inner

    def _record(self, outcome: str, ttft: float | None) -> None:
        record = self.metrics.record
        record("tierserve_engine_generations", 1, {**self.route_tags, "outcome": outcome})
        if ttft is not None:
            record("tierserve_engine_time_to_first_token_seconds", ttft, self.route_tags)

    def publish(self, stats, weight_version: int | None = None) -> None:
        """Set this replica's gauges from an EngineStats snapshot."""
        if self.metrics is None:
            return
        record, tags = self.metrics.record, self.replica_tags
        record("tierserve_queue_depth_requests", stats.queue_depth, tags)
        record("tierserve_queue_waiting_requests", stats.waiting, tags)
        record("tierserve_queue_running_requests", stats.running, tags)
        record("tierserve_kv_cache_usage_ratio", float(stats.kv_cache_usage), tags)
        record("tierserve_weight_version", float(weight_version or 0), tags)

    def start_publishing(self, publish: Callable[[], Awaitable[None]]) -> None:
        """Call `publish` every `interval_s` on the running loop until `close()`."""
        if self.metrics is None or self._task is not None:
            return

        async def loop() -> None:
            while True:
                try:
                    await publish()
                except Exception as err:  # the engine may be restarting; try again later
                    log.debug("metrics publish failed: %r", err)
                await asyncio.sleep(self.interval_s)

        self._task = asyncio.get_running_loop().create_task(loop())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.tracing.force_flush()


def _end_spans(spans, last, ttft: float | None, outcome: str, error) -> None:
    outer, inner = spans
    attributes = {"tierserve.outcome": outcome}
    if last is not None:
        attributes.update({"gen_ai.usage.input_tokens": last.prompt_tokens,
                           "gen_ai.usage.output_tokens": last.completion_tokens})
        if last.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (last.finish_reason,)
    if ttft is not None:
        attributes["tierserve.engine_ttft_s"] = ttft
    inner.set_attributes(attributes)
    for span in (inner, outer):
        if error is not None:
            mark_error(span, error)
        span.end()
