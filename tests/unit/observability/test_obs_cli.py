"""`tierserve traces` renders span trees from the file exporter; `tierserve metrics`
summarizes the scraped tierserve_* samples."""

from __future__ import annotations

from tierserve.config import ObservabilityConfig
from tierserve.observability.tracing import read_span_file, setup_tracing
import argparse

from tierserve.platform import cli, cli_obs
from tierserve.platform.cli_obs import render_traces, summarize


def parser() -> argparse.ArgumentParser:
    """The two subcommands alone (the full CLI imports every command module)."""
    top = argparse.ArgumentParser()
    cli_obs.register(top.add_subparsers(dest="command", required=True))
    return top


def test_commands_are_registered_in_the_cli():
    assert "cli_obs" in cli.COMMAND_MODULES


def test_traces_render_one_tree_per_trace(tmp_path, capsys):
    path = str(tmp_path / "spans.jsonl")
    config = ObservabilityConfig(exporter="file", traces_file=path)
    router, tier = setup_tracing(config, "router"), setup_tracing(config, "tier")
    for request_id in ("req-1", "req-2"):
        root = router.start_span("router.request",
                                 attributes={"tierserve.request_id": request_id})
        child = tier.start_span("tier.generate", tier.extract(router.inject(root)))
        tier.start_span("engine.generate", child).end()
        child.end()
        root.end()
    router.force_flush()
    tier.force_flush()
    text = render_traces(read_span_file(path), request_id="req-2")
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("trace ")
    assert lines[1].lstrip().startswith("router.request") and "router:" in lines[1]
    assert lines[2].startswith("    tier.generate") and "tier:" in lines[2]
    assert lines[3].startswith("      engine.generate")
    args = parser().parse_args(["traces", path, "--last", "1"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.count("trace ") == 1


SCRAPED = """# HELP ray_tierserve_requests_total Requests.
# TYPE ray_tierserve_requests_total counter
ray_tierserve_requests_total{Component="core_worker",WorkerId="a",deployment="d",status="200"} 2.0
ray_tierserve_requests_total{Component="core_worker",WorkerId="b",deployment="d",status="200"} 3.0
# HELP ray_tierserve_time_to_first_token_seconds TTFT.
# TYPE ray_tierserve_time_to_first_token_seconds histogram
ray_tierserve_time_to_first_token_seconds_bucket{deployment="d",le="0.1"} 1.0
ray_tierserve_time_to_first_token_seconds_bucket{deployment="d",le="+Inf"} 5.0
ray_tierserve_time_to_first_token_seconds_count{deployment="d"} 5.0
ray_tierserve_time_to_first_token_seconds_sum{deployment="d"} 1.5
# HELP ray_node_cpu_count CPUs.
# TYPE ray_node_cpu_count gauge
ray_node_cpu_count{ip="x"} 2.0
"""


def test_metrics_summary_merges_workers_and_hides_buckets():
    lines = summarize(SCRAPED)
    assert "ray_tierserve_requests_total{deployment=d,status=200} 5" in lines
    assert "ray_tierserve_time_to_first_token_seconds_count{deployment=d} 5" in lines
    assert not any("_bucket" in line or "node_cpu" in line for line in lines)
    assert summarize(SCRAPED, match="requests") == [
        "ray_tierserve_requests_total{deployment=d,status=200} 5"]
