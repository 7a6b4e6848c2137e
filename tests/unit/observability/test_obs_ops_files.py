"""The shipped operations files: alert rules (checked and unit-tested by promtool when it
is installed) and the Grafana dashboard, both built only on metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tierserve.observability.metrics import ALL_METRICS

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yaml"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
DASHBOARD = ROOT / "ops" / "grafana" / "tierserve-dashboard.json"

RAY_METRICS = {"ray_serve_deployment_replica_healthy", "ray_serve_autoscaling_target_replicas",
               "ray_node_gram_used", "ray_node_gram_available", "ray_node_gpus_utilization",
               "ray_serve_num_http_error_requests_total"}
SUFFIXES = ("_bucket", "_count", "_sum")


def known_series() -> set[str]:
    names = set(RAY_METRICS)
    for spec in ALL_METRICS:
        base = spec.prometheus_name
        names.add(base)
        if spec.kind == "histogram":
            names.update(base + s for s in SUFFIXES)
    return names


def series_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(ray_[a-z0-9_]+)", expr))


def recorded(rules: dict) -> set[str]:
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def test_alert_rules_use_known_metrics_and_cover_the_thresholds():
    rules = yaml.safe_load(ALERTS.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    unknown = set().union(*map(series_in, exprs)) - known_series()
    assert not unknown, unknown
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert {"TierserveTTFTP99AboveBaseline", "TierserveErrorRateHigh", "TierserveQueueGrowing",
            "TierserveGPUMemoryHigh"} <= names
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("warning", "critical")
                assert rule["annotations"]["summary"]


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian: apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_the_rules():
    check = subprocess.run(["promtool", "check", "rules", str(ALERTS)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(["promtool", "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def dashboard_targets(board: dict) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_known_metrics():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    exprs = dashboard_targets(board)
    assert len(exprs) >= 12
    unknown = set().union(*map(series_in, exprs)) - known_series()
    assert not unknown, unknown
    used = set().union(*map(series_in, exprs))
    for name in ("ray_tierserve_requests_total", "ray_tierserve_route_decisions_total",
                 "ray_tierserve_time_to_first_token_seconds_bucket",
                 "ray_tierserve_time_per_output_token_seconds_bucket",
                 "ray_tierserve_completion_tokens_total", "ray_tierserve_queue_waiting_requests",
                 "ray_tierserve_weight_version", "ray_tierserve_context_store_errors_total",
                 "ray_tierserve_autoscaling_target_replicas"):
        assert name in used, name
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
