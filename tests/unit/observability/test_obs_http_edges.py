"""Requests refused before a generation starts are still one trace and one counted
request: the security gate's 401, invalid JSON, and the auth span's key id."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.unit.conftest import small_config
from tests.unit.observability.conftest import traced_stack
from tierserve.config import parse_config
from tierserve.router.http_app import create_app

KEY = "sk-test-alice-0123456789"


@pytest.fixture
async def keyed(tiers, conversations, spans, metrics):
    config = parse_config(small_config(security={"auth": "required", "api_keys": [
        {"id": "alice", "role": "inference", "sha256": hashlib.sha256(KEY.encode()).hexdigest()}
    ]}))
    service = traced_stack(config, tiers, conversations, spans, metrics)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def chat():
    return {"model": "7b", "messages": [{"role": "user", "content": "hi there"}]}


def named(spans, name):
    return [s for s in spans.get_finished_spans() if s.name == name]


async def test_missing_key_is_a_traced_401(keyed, spans, metrics):
    r = await keyed.post("/v1/chat/completions", json=chat())
    assert r.status_code == 401
    assert metrics.total("tierserve_requests", status="401", tier="none") == 1
    assert metrics.total("tierserve_request_errors", error_type="authentication_error") == 1
    root, auth = named(spans, "router.request")[0], named(spans, "router.auth")[0]
    assert auth.parent.span_id == root.context.span_id
    assert auth.status.status_code.name == "ERROR"
    assert root.attributes["http.response.status_code"] == 401
    assert not named(spans, "router.classify")


async def test_valid_key_names_the_holder_on_the_auth_span(keyed, spans, metrics):
    r = await keyed.post("/v1/chat/completions", json=chat(),
                         headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    auth = named(spans, "router.auth")[0]
    assert auth.attributes["tierserve.key_id"] == "alice"
    assert auth.status.status_code.name == "UNSET"
    assert auth.end_time <= named(spans, "router.classify")[0].start_time


async def test_invalid_json_is_counted_as_400(traced, metrics, spans):
    r = await traced.post("/v1/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert metrics.total("tierserve_requests", status="400", endpoint="chat.completions") == 1
    assert metrics.total("tierserve_request_errors", error_type="invalid_request_error") == 1
    assert named(spans, "router.request")[0].attributes["http.response.status_code"] == 400


async def test_other_paths_are_not_observed(traced, spans, metrics):
    assert (await traced.get("/v1/models")).status_code == 200
    assert (await traced.get("/health")).status_code == 200
    assert spans.get_finished_spans() == () or not spans.get_finished_spans()
    assert metrics.series("tierserve_requests") == []
