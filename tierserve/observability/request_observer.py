"""What the router records per request: one trace (a root span, a child span per step),
the request metrics, and one summary log line.

Span tree of a request in the router process:
    router.request (server)                      tier, deployment, route reason, tokens, TTFT
      router.auth                                the security gate (key, role, rate limit)
      router.context.load, router.classify, router.context.trim
      router.dispatch (client)                   parent of the tier replica's spans
The HTTP middleware (observability/asgi.py) begins the observation before the security
gate runs; the service finds it through a context variable and marks its steps with
`observer.span(name)`, without threading an object through every call. Per request it
costs a handful of metric records; nothing is done per token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from tierserve.config import ObservabilityConfig
from tierserve.errors import TierServeError
from tierserve.observability.logging import bind_request, configure_logging
from tierserve.observability.metrics import (
    ROUTER_METRICS,
    MetricsBackend,
    Recorder,
    backend_for,
    reason_kind,
)
from tierserve.observability.tracing import Tracing, ids_of, mark_error, setup_tracing

log = logging.getLogger("tierserve.requests")

_CURRENT: ContextVar[RequestObservation | None] = ContextVar("tierserve_observation",
                                                             default=None)
_NO_SPAN = nullcontext()
CANCELLED = 499
"""Status recorded when the client went away before the answer was complete."""

# Ray's failures by class name (as in router/http_errors.py), so no Ray import is needed.
_UNAVAILABLE = {"ActorDiedError", "RayActorError", "ActorUnavailableError",
                "DeploymentUnavailableError", "BackPressureError"}


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
                413: "invalid_request_error", 422: "invalid_request_error",
                429: "rate_limit_error", 503: "unavailable_error"}


def status_of(err: BaseException | None, completed: bool) -> tuple[int, str | None]:
    """(HTTP status, error type) a finished request is counted under."""
    if err is None:
        return (200, None) if completed else (CANCELLED, None)
    if isinstance(err, (asyncio.CancelledError, GeneratorExit)):
        return CANCELLED, None
    for candidate in (err, getattr(err, "cause", None)):
        if isinstance(candidate, TierServeError):
            return candidate.status_code, candidate.error_type
    if {cls.__name__ for cls in type(err).__mro__} & _UNAVAILABLE:
        return 503, "unavailable_error"
    return 500, "internal_error"


def error_type_of(status: int) -> str | None:
    """Error type of a response the router sent without a typed error in hand."""
    if status < 400 or status == CANCELLED:
        return None
    return _ERROR_TYPES.get(status, "internal_error" if status >= 500 else "invalid_request_error")


class RouterObserver:
    """Per-replica: the tracer, the metric instruments and the request-log switch."""

    def __init__(self, tracing: Tracing | None = None, backend: MetricsBackend | None = None,
                 request_log: bool = False, clock: Callable[[], float] = time.perf_counter):
        self.tracing = tracing or Tracing.disabled()
        self.metrics = Recorder(backend, ROUTER_METRICS) if backend is not None else None
        self.request_log = request_log
        self.clock = clock

    @classmethod
    def disabled(cls) -> RouterObserver:
        return cls()

    @classmethod
    def from_config(cls, config: ObservabilityConfig) -> RouterObserver:
        """The router replica's observer; also routes its logs through the configured format."""
        configure_logging(config, "router")
        return cls(setup_tracing(config, "router"), backend_for(config.metrics),
                   config.request_log)

    @property
    def active(self) -> bool:
        """Whether anything is recorded (an untraced, unmetered router skips all of it)."""
        return self.tracing.enabled or self.metrics is not None or self.request_log

    def begin(self, endpoint: str) -> RequestObservation:
        return RequestObservation(self, endpoint)

    async def observe(self, endpoint: str, start: Callable[..., Awaitable[Any]], *args) -> Any:
        """Run `start(*args)` (up to the first generated chunk) as one observed request;
        the StartedGeneration it returns carries the observation to the end of the stream.
        Continues the observation the HTTP middleware began, else begins one."""
        obs = _CURRENT.get()
        token = None
        if obs is None:
            if not self.active:
                return await start(*args)
            obs = self.begin(endpoint)
            token = _CURRENT.set(obs)
        try:
            started = await start(*args)
        except BaseException as err:
            obs.error = err
            if token is not None:  # else the middleware finishes it with the response status
                obs.finish(None, err, False)
            raise
        finally:
            if token is not None:
                _CURRENT.reset(token)
        obs.first_chunk()
        obs.handed_over = True
        started.observation = obs
        return started

    def span(self, name: str):
        """A child span of the current request for one router step (a no-op when untraced)."""
        obs = _CURRENT.get()
        if obs is None or obs.root is None:
            return _NO_SPAN
        return obs.child(name)

    def dispatching(self, decision, request):
        """Record the route and return `request` carrying the dispatch span's trace context."""
        obs = _CURRENT.get()
        return request if obs is None else obs.routed(decision, request)

    def context_error(self, operation: str) -> None:
        if self.metrics is not None:
            self.metrics.record("tierserve_context_store_errors", 1, {"operation": operation})


class RequestObservation:
    """One request's root span, timings and route, from arrival to the stream's end."""

    def __init__(self, observer: RouterObserver, endpoint: str):
        self.observer = observer
        self.endpoint = endpoint
        self.began = observer.clock()
        self.began_ns = time.time_ns()
        self.first_at: float | None = None
        self.handed_over = False
        """The StartedGeneration owns it now (it finishes when the stream closes)."""
        self.error: BaseException | None = None
        self.auth = None
        self.decision = None
        self.request_id: str | None = None
        self.dispatch = None
        self.finished = False
        tracing = observer.tracing
        self.root = (tracing.start_span("router.request", kind="server",
                                        attributes={"tierserve.endpoint": endpoint},
                                        start_time=self.began_ns)
                     if tracing.enabled else None)
        self.trace_id, span_id = ids_of(self.root) if self.root is not None else (None, None)
        if self.trace_id:
            bind_request(trace_id=self.trace_id, span_id=span_id)

    def auth_passed(self, key_id: str | None) -> None:
        """The security gate let the request in: the auth span ran from arrival to now."""
        if self.root is not None and self.auth is None:
            self.auth = self._auth_span(key_id)
            self.auth.end()

    def _auth_span(self, key_id: str | None = None):
        attributes = {"tierserve.key_id": key_id} if key_id else None
        return self.observer.tracing.start_span("router.auth", self.root, attributes=attributes,
                                                start_time=self.began_ns)

    @contextmanager
    def child(self, name: str):
        with self.observer.tracing.span(name, self.root) as span:
            yield span

    def routed(self, decision, request):
        self.decision, self.request_id = decision, request.request_id
        bind_request(request_id=request.request_id)
        metrics = self.observer.metrics
        if metrics is not None:
            metrics.record("tierserve_route_decisions", 1, {
                "tier": decision.tier, "deployment": decision.variant,
                "reason": reason_kind(decision.reason)})
        if self.root is None:
            return request
        self.root.set_attributes({
            "tierserve.request_id": request.request_id, "tierserve.tier": decision.tier,
            "tierserve.deployment": decision.variant, "tierserve.route_reason": decision.reason,
            "tierserve.route_confidence": decision.confidence})
        tracing = self.observer.tracing
        self.dispatch = tracing.start_span("router.dispatch", self.root, kind="client",
                                           attributes={"tierserve.deployment": decision.variant})
        return replace(request, trace_context=tracing.inject(self.dispatch))

    def first_chunk(self) -> None:
        self.first_at = self.observer.clock()

    def context_error(self, operation: str) -> None:
        self.observer.context_error(operation)

    def finish(self, last, error: BaseException | None, completed: bool,
               status: int | None = None) -> None:
        """The request is over (answered, failed or abandoned): end spans, record metrics.
        `status` is the HTTP status the router sent, when no generation started."""
        if self.finished:
            return
        self.finished = True
        end = self.observer.clock()
        if status is None or error is not None and status >= 500:
            status, error_type = status_of(error, completed)
        elif error is not None:
            error_type = status_of(error, completed)[1]
        else:
            error_type = error_type_of(status)
        prompt = last.prompt_tokens if last is not None else 0
        completion = last.completion_tokens if last is not None else 0
        if self.observer.metrics is not None:
            self._record(end, status, error_type, prompt, completion)
        if self.root is not None:
            self._end_spans(status, error, prompt, completion)
        if self.observer.request_log:
            self._log(end, status, error_type, prompt, completion)

    def _tags(self) -> dict[str, str]:
        d = self.decision
        return {"tier": d.tier if d else "none", "deployment": d.variant if d else "none"}

    def _record(self, end: float, status: int, error_type: str | None, prompt: int,
                completion: int) -> None:
        record, tags = self.observer.metrics.record, self._tags()
        full = {"endpoint": self.endpoint, **tags}
        record("tierserve_requests", 1, {**full, "status": str(status)})
        if error_type is not None:
            record("tierserve_request_errors", 1,
                   {**full, "status": str(status), "error_type": error_type})
        record("tierserve_request_duration_seconds", end - self.began, full)
        if self.first_at is None:
            return
        record("tierserve_time_to_first_token_seconds", self.first_at - self.began, tags)
        if prompt > 0:
            record("tierserve_prompt_tokens", prompt, tags)
        if completion > 0:
            record("tierserve_completion_tokens", completion, tags)
        decode_s = end - self.first_at
        if completion > 1 and decode_s > 0:
            record("tierserve_time_per_output_token_seconds", decode_s / (completion - 1), tags)
            record("tierserve_output_tokens_per_second", (completion - 1) / decode_s, tags)

    def _end_spans(self, status: int, error: BaseException | None, prompt: int,
                   completion: int) -> None:
        attributes = {"http.response.status_code": status,
                      "gen_ai.usage.input_tokens": prompt,
                      "gen_ai.usage.output_tokens": completion}
        if self.first_at is not None:
            attributes["tierserve.ttft_s"] = self.first_at - self.began
        self.root.set_attributes(attributes)
        if self.auth is None and status in (401, 403, 429):  # the gate refused it
            self.auth = self._auth_span()
            mark_error(self.auth, error or _Refused(status))
            self.auth.end()
        for span in (self.dispatch, self.root):
            if span is None:
                continue
            if error is not None and status >= 500:
                mark_error(span, error)
            span.end()

    def _log(self, end: float, status: int, error_type: str | None, prompt: int,
             completion: int) -> None:
        d = self.decision
        fields = {
            "event": "request", "request_id": self.request_id, "trace_id": self.trace_id,
            "endpoint": self.endpoint, "tier": d.tier if d else None,
            "deployment": d.variant if d else None, "route_reason": d.reason if d else None,
            "status": status, "error_type": error_type, "prompt_tokens": prompt,
            "completion_tokens": completion, "duration_s": round(end - self.began, 6),
            "ttft_s": round(self.first_at - self.began, 6) if self.first_at else None,
        }
        log.info("%s %s %d", self.endpoint, self.request_id, status, extra={"fields": fields})


class _Refused(Exception):
    """Stands for a refusal the gate answered itself (no exception reaches the router)."""

    def __init__(self, status: int):
        super().__init__(f"refused with HTTP {status}")
