"""Structured logs: one JSON object per line, carrying the request id and the trace id.

`configure_logging` installs the handler on the `tierserve` logger of a replica process
(Ray writes the process's stderr to its worker log, shown in the Ray dashboard).
`bind_request` puts the current request's ids in a context variable, so every log line
written while serving it carries them, in the router and in the tier replica.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass

from tierserve.config import ObservabilityConfig

ROOT_LOGGER = "tierserve"


@dataclass(frozen=True)
class RequestIds:
    request_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


_REQUEST: ContextVar[RequestIds] = ContextVar("tierserve_request", default=RequestIds())
# Per-task state, like OpenTelemetry's own context: each request runs in its own task.


def bind_request(request_id: str | None = None, trace_id: str | None = None,
                 span_id: str | None = None) -> None:
    """Tag this task's log lines (and the tasks it starts) with the request's ids."""
    current = _REQUEST.get()
    _REQUEST.set(RequestIds(request_id or current.request_id, trace_id or current.trace_id,
                            span_id or current.span_id))


def current_request() -> RequestIds:
    return _REQUEST.get()


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", "component", "pid", "request_id", "trace_id", ...}
    plus the mapping passed as `extra={"fields": {...}}`."""

    def __init__(self, component: str):
        super().__init__()
        self.component = component
        self.pid = os.getpid()

    def format(self, record: logging.LogRecord) -> str:
        ids = _REQUEST.get()
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "component": self.component,
            "pid": self.pid,
        }
        if ids.request_id:
            line["request_id"] = ids.request_id
        if ids.trace_id:
            line["trace_id"] = ids.trace_id
        if ids.span_id:
            line["span_id"] = ids.span_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__("%(asctime)s %(levelname)s %(name)s [" + component + "] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = _REQUEST.get()
        if ids.request_id or ids.trace_id:
            text += f" request_id={ids.request_id} trace_id={ids.trace_id}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


class _TierserveHandler(logging.StreamHandler):
    """Marks the handler this module installed, so configuring twice replaces it."""


def configure_logging(config: ObservabilityConfig, component: str, stream=None) -> logging.Logger:
    """Route the `tierserve` loggers of this process through one formatted handler."""
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _TierserveHandler)]:
        logger.removeHandler(handler)
    handler = _TierserveHandler(stream or sys.stderr)
    formatter = JsonFormatter if config.log_format == "json" else TextFormatter
    handler.setFormatter(formatter(component))
    logger.addHandler(handler)
    logger.setLevel(config.log_level)
    logger.propagate = False  # one line per record, whatever the host process configured
    return logger
