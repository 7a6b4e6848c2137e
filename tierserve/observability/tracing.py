"""OpenTelemetry tracing for one process (a router or tier replica), built from config.

Every replica owns a `Tracing` (no global tracer provider is set): spans are created with
explicit parents, and the W3C trace context crosses the Ray Serve handle call as a plain
dict on `GenerationRequest.trace_context`. With the exporter 'none' the `Tracing` is
disabled and callers skip span work entirely, so tracing off costs nothing measurable.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tierserve.config import ObservabilityConfig

TRACEPARENT = "traceparent"


class Tracing:
    """A tracer with its provider, or nothing at all (`enabled` False)."""

    def __init__(self, provider=None, component: str = ""):
        self.provider = provider
        self.component = component
        self.enabled = provider is not None
        if self.enabled:  # OpenTelemetry is imported only when tracing is on
            from opentelemetry import trace
            from opentelemetry.context import Context
            from opentelemetry.trace import SpanKind
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            self._tracer = provider.get_tracer("tierserve")
            self._in_context = trace.set_span_in_context
            self._context_type = Context
            self._kinds = {k.name.lower(): k for k in SpanKind}
            self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(None)

    def start_span(self, name: str, parent=None, kind: str = "internal",
                   attributes: Mapping[str, Any] | None = None, start_time: int | None = None):
        """A started span (end it yourself); `parent` is a span, a context or None (root);
        `start_time` in ns since the epoch (default: now)."""
        context = parent
        if parent is not None and not isinstance(parent, self._context_type):
            context = self._in_context(parent)
        return self._tracer.start_span(name, context=context, kind=self._kinds[kind],
                                       attributes=attributes, start_time=start_time)

    @contextmanager
    def span(self, name: str, parent=None, **attributes) -> Iterator[Any]:
        """A child span around a block; an exception marks it failed and propagates."""
        span = self.start_span(name, parent, attributes=attributes)
        try:
            yield span
        except BaseException as err:
            mark_error(span, err)
            raise
        finally:
            span.end()

    def inject(self, span) -> dict[str, str]:
        """The W3C trace context (`traceparent`) naming `span` as the parent."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._in_context(span))
        return carrier

    def extract(self, carrier: Mapping[str, str] | None):
        """The context a remote caller sent (None: start a new trace)."""
        if not carrier:
            return None
        return self._propagator.extract(dict(carrier))

    def force_flush(self, timeout_s: float = 5.0) -> None:
        if self.provider is not None:
            self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def mark_error(span, err: BaseException, status: str | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(err)
    span.set_status(Status(StatusCode.ERROR, status or type(err).__name__))


def ids_of(span) -> tuple[str | None, str | None]:
    """Hex (trace id, span id) of a sampled span (what JSON logs carry), else (None, None)."""
    ctx = span.get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class FileSpanExporter:
    """Appends finished spans as JSON lines to one file; several processes may share it
    (each batch is one O_APPEND write). For tests and debugging without a collector."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)

    def export(self, spans: Sequence) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        data = "".join(json.dumps(span_record(s), separators=(",", ":")) + "\n" for s in spans)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_record(span) -> dict:
    """One finished SDK span as plain JSON data (ids in hex, times in ns)."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "kind": span.kind.name.lower(),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name.lower(),
        "attributes": dict(span.attributes or {}),
        "resource": dict(span.resource.attributes),
    }


def read_span_file(path: str) -> list[dict]:
    """Spans a FileSpanExporter wrote (missing file: none)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _exporter(config: ObservabilityConfig):
    kind = config.span_exporter
    if kind == "file":
        return FileSpanExporter(config.traces_file)
    if config.otlp_protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=config.otlp_endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    insecure = config.otlp_endpoint.startswith("http://")
    return OTLPSpanExporter(endpoint=config.otlp_endpoint, insecure=insecure)


def setup_tracing(config: ObservabilityConfig, component: str, exporter=None) -> Tracing:
    """This process's Tracing: disabled for exporter 'none' unless a test passes `exporter`
    (e.g. an InMemorySpanExporter, exported synchronously)."""
    if exporter is None and config.span_exporter == "none":
        return Tracing.disabled()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({
        "service.name": config.service_name,
        "tierserve.component": component,
        "process.pid": os.getpid(),
    })
    provider = TracerProvider(resource=resource,
                              sampler=ParentBased(TraceIdRatioBased(config.sampling_ratio)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(
            _exporter(config), schedule_delay_millis=int(config.export_delay_s * 1000)))
    return Tracing(provider, component)
