"""Observability on the real stack: one trace per request across the router replica and the
tier replica (two Ray worker processes, the W3C context crossing the Serve handle call),
tierserve_* series on Ray's Prometheus endpoint, and JSON request logs with both ids.

Deploys its own app ("obs", route /obs: a router and one SmolLM2 vLLM engine) with the
'file' span exporter, so the spans of every process land in one JSON-lines file.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODELS_DIR, smol
from tierserve.config import parse_config
from tierserve.observability.tracing import read_span_file

APP = "obs"
PREFIX = "/obs"
VARIANT = "obs-7b"
ROUTER_STEPS = ("router.auth", "router.context.load", "router.classify",
                "router.context.trim", "router.dispatch")


@pytest.fixture(scope="module")
def obs(platform, tmp_path_factory):
    from ray import serve

    from tierserve.platform.app import build_app

    traces = tmp_path_factory.mktemp("traces") / "spans.jsonl"
    config = parse_config({
        "models_dir": str(MODELS_DIR),
        "security": {"auth": "disabled"},
        "context": {"redis_url": platform.redis.url},
        "observability": {"exporter": "file", "traces_file": str(traces),
                          "export_delay_s": 0.2, "metrics_interval_s": 1.0},
        "tiers": [{"id": "7b", "variants": [smol(VARIANT)]}],
    })
    begin = time.monotonic()
    serve.run(build_app(config), name=APP, route_prefix=PREFIX)
    print(f"\nobservability app deployed in {time.monotonic() - begin:.1f} s")
    yield f"{platform.url}{PREFIX}", traces
    serve.delete(APP)


def _request_id(response: httpx.Response) -> str:
    """The router's request id: Ray Serve's proxy adds its own x-request-id after it."""
    return response.headers.get_list("x-request-id", split_commas=True)[0]


def _trace_of(traces: Path, request_id: str, timeout_s: float = 30.0) -> list[dict]:
    """All spans of the trace whose root carries `request_id`, once the tier's are in."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = read_span_file(str(traces))
        root = next((s for s in spans if s["name"] == "router.request"
                     and s["attributes"].get("tierserve.request_id") == request_id), None)
        if root is not None:
            mine = [s for s in spans if s["trace_id"] == root["trace_id"]]
            if {"engine.generate", "tier.generate"} <= {s["name"] for s in mine}:
                return mine
        if time.monotonic() > deadline:
            pytest.fail(f"trace of {request_id} incomplete: {[s['name'] for s in spans]}")
        time.sleep(0.3)


def _print_trace(spans: list[dict]) -> None:
    by_id = {s["span_id"]: s for s in spans}
    start = min(s["start_ns"] for s in spans)
    print("\nspan                  parent                pid      start ms  dur ms")
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        parent = by_id.get(s["parent_span_id"], {}).get("name", "-")
        print(f"{s['name']:<21} {parent:<21} {s['resource']['process.pid']:<8} "
              f"{(s['start_ns'] - start) / 1e6:8.1f} {(s['end_ns'] - s['start_ns']) / 1e6:7.1f}")


def test_one_trace_across_router_and_tier_processes(obs):
    url, traces = obs
    body = {"model": "auto", "conversation_id": "obs-trace-1", "max_tokens": 8,
            "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
        request_id = _request_id(r)
    assert text.endswith("data: [DONE]\n\n")
    spans = _trace_of(traces, request_id)
    _print_trace(spans)
    named = {s["name"]: s for s in spans}
    assert set(named) == {"router.request", *ROUTER_STEPS, "tier.generate", "engine.generate"}
    assert len(spans) == len(named), "one span per step"
    root = named["router.request"]
    assert root["parent_span_id"] is None
    for step in ROUTER_STEPS:
        assert named[step]["parent_span_id"] == root["span_id"], step
    assert named["tier.generate"]["parent_span_id"] == named["router.dispatch"]["span_id"]
    assert named["engine.generate"]["parent_span_id"] == named["tier.generate"]["span_id"]
    router_pid = root["resource"]["process.pid"]
    tier_pid = named["tier.generate"]["resource"]["process.pid"]
    assert router_pid != tier_pid, "router and tier replicas are separate processes"
    assert {named[s]["resource"]["process.pid"] for s in ROUTER_STEPS} == {router_pid}
    assert named["engine.generate"]["resource"]["process.pid"] == tier_pid
    attrs = root["attributes"]
    assert attrs["tierserve.deployment"] == VARIANT and attrs["tierserve.tier"] == "7b"
    assert attrs["tierserve.route_reason"]
    assert attrs["gen_ai.usage.output_tokens"] == 8 and attrs["gen_ai.usage.input_tokens"] > 0
    engine_ttft = named["engine.generate"]["attributes"]["tierserve.engine_ttft_s"]
    assert 0 < engine_ttft <= attrs["tierserve.ttft_s"]
    assert root["start_ns"] <= named["tier.generate"]["start_ns"]
    assert named["tier.generate"]["end_ns"] <= root["end_ns"]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def _metrics_port() -> int:
    """The node's Prometheus endpoint (`ray start --metrics-export-port`; random when unset)."""
    import ray

    return ray.nodes()[0].get("MetricsExportPort") or \
        ray._private.worker._global_node.metrics_export_port


def _series(text: str, name: str, **labels: str) -> list[float]:
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append(sample.value)
    return found


def test_prometheus_endpoint_has_the_series(obs):
    url, _ = obs
    body = {"model": "7b", "max_tokens": 6, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}]}
    for _ in range(3):
        assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).status_code == 200
    port = _metrics_port()
    dep = {"deployment": VARIANT}
    wanted = {
        "ray_tierserve_requests_total": {**dep, "status": "200", "endpoint": "chat.completions"},
        "ray_tierserve_route_decisions_total": {**dep, "reason": "pinned:tier"},
        "ray_tierserve_completion_tokens_total": dep,
        "ray_tierserve_prompt_tokens_total": dep,
        "ray_tierserve_time_to_first_token_seconds_bucket": {**dep, "le": "+Inf"},
        "ray_tierserve_time_per_output_token_seconds_count": dep,
        "ray_tierserve_engine_time_to_first_token_seconds_count": dep,
        "ray_tierserve_engine_generations_total": {**dep, "outcome": "finished"},
        "ray_tierserve_queue_depth_requests": dep,
        "ray_tierserve_kv_cache_usage_ratio": dep,
    }
    # Counters reach the endpoint on Ray's export interval, a few at a time: wait until
    # every series is there AND carries all three requests, then check the rest.
    deadline = time.monotonic() + 60
    while True:
        text = _scrape(port)
        missing = [n for n, labels in wanted.items() if not _series(text, n, **labels)]
        served = sum(_series(text, "ray_tierserve_requests_total", **dep, status="200"))
        tokens = sum(_series(text, "ray_tierserve_completion_tokens_total", **dep))
        if (not missing and served >= 3 and tokens >= 18) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, f"not on :{port}/metrics after 60 s: {missing}"
    assert served >= 3 and tokens >= 18, f"after 60 s: {served} requests, {tokens} tokens"
    buckets = _series(text, "ray_tierserve_time_to_first_token_seconds_bucket", **dep)
    assert max(buckets) >= 3 and len(buckets) > 3
    assert _series(text, "ray_tierserve_queue_depth_requests", **dep)[0] >= 0


def _log_files() -> list[Path]:
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    return [p for p in logs.rglob("*") if p.is_file() and p.suffix in (".err", ".out", ".log")]


def test_request_log_is_json_with_request_and_trace_ids(obs):
    url, traces = obs
    body = {"model": VARIANT, "max_tokens": 4,
            "messages": [{"role": "user", "content": "One word please."}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    request_id = _request_id(r)
    trace_id = next(s["trace_id"] for s in _trace_of(traces, request_id))
    deadline = time.monotonic() + 30
    while True:
        lines = [line for path in _log_files()
                 for line in path.read_text(errors="replace").splitlines() if request_id in line]
        records = [json.loads(line[line.index("{"):]) for line in lines if "{" in line]
        done = [rec for rec in records if rec.get("event") == "request"]
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done, f"no JSON request log line for {request_id}: {lines}"
    line = done[0]
    assert line["request_id"] == request_id and line["trace_id"] == trace_id
    assert line["status"] == 200 and line["deployment"] == VARIANT
    assert line["component"] == "router" and line["completion_tokens"] > 0
