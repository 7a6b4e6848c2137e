"""JSON log lines carry the request id and trace id of the request being served."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from tierserve.config import ObservabilityConfig
from tierserve.observability.logging import bind_request, configure_logging


@pytest.fixture
def stream():
    buffer = io.StringIO()
    logger = logging.getLogger("tierserve")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield buffer
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def lines(buffer):
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_has_ids_and_fields(stream):
    configure_logging(ObservabilityConfig(), "router", stream)

    async def serve():
        bind_request(request_id="chatcmpl-1", trace_id="ab" * 16, span_id="cd" * 8)
        logging.getLogger("tierserve.router.service").warning(
            "slow %s", "tier", extra={"fields": {"tier": "7b"}})

    asyncio.run(serve())
    (line,) = lines(stream)
    assert line["msg"] == "slow tier" and line["level"] == "WARNING"
    assert line["request_id"] == "chatcmpl-1" and line["trace_id"] == "ab" * 16
    assert line["component"] == "router" and line["tier"] == "7b"
    assert line["ts"].endswith("Z")


def test_ids_do_not_leak_between_tasks(stream):
    configure_logging(ObservabilityConfig(), "tier", stream)
    log = logging.getLogger("tierserve.x")

    async def one(i):
        bind_request(request_id=f"r{i}")
        await asyncio.sleep(0)
        log.info("done")

    async def main():
        await asyncio.gather(one(1), one(2))
        log.info("outside")

    asyncio.run(main())
    found = lines(stream)
    assert sorted(line.get("request_id") for line in found[:2]) == ["r1", "r2"]
    assert "request_id" not in found[2]


def test_configuring_twice_keeps_one_handler_and_text_format(stream):
    configure_logging(ObservabilityConfig(), "router", stream)
    configure_logging(ObservabilityConfig(log_format="text", log_level="WARNING"), "router",
                      stream)
    log = logging.getLogger("tierserve.y")
    log.info("hidden")
    log.error("shown")
    text = stream.getvalue().splitlines()
    assert len(text) == 1 and "ERROR tierserve.y [router] shown" in text[0]


def test_exceptions_are_one_json_line(stream):
    configure_logging(ObservabilityConfig(), "tier", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tierserve.z").exception("failed")
    (line,) = lines(stream)
    assert "ValueError: boom" in line["exc"]
