"""`tierserve metrics` (where Prometheus scrapes, and the tierserve_* series now) and
`tierserve traces` (span trees from the 'file' exporter). docs/operations.md."""

from __future__ import annotations

import argparse
import urllib.request
from collections import defaultdict

PREFIX = "ray_tierserve_"
HIDDEN_LABELS = {"SessionName", "NodeAddress", "WorkerId", "Component", "Version",
                 "otel_scope_name", "otel_scope_schema_url", "otel_scope_version"}


def register(sub) -> None:
    metrics = sub.add_parser("metrics", help="Ray metrics endpoints and the tierserve_* series")
    metrics.add_argument("--raw", action="store_true", help="print the scraped lines as they are")
    metrics.add_argument("--match", default="", help="only series whose name contains this")
    metrics.set_defaults(func=_metrics)
    traces = sub.add_parser("traces", help="span trees from a traces_file ('file' exporter)")
    traces.add_argument("file", help="observability.traces_file")
    traces.add_argument("--request-id", default=None, help="only the trace of this request")
    traces.add_argument("--last", type=int, default=5, help="the last N traces (default 5)")
    traces.set_defaults(func=_traces)


def summarize(text: str, match: str = "") -> list[str]:
    """`name{labels} value` for the tierserve_* samples, Ray's bookkeeping labels dropped;
    histograms shown by count and sum only."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[tuple[str, tuple], float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith(PREFIX) or match not in name or name.endswith("_bucket"):
                continue
            labels = tuple(sorted((k, v) for k, v in sample.labels.items()
                                  if k not in HIDDEN_LABELS))
            totals[(name, labels)] += sample.value
    return [f"{name}{{{','.join(f'{k}={v}' for k, v in labels)}}} {value:g}"
            for (name, labels), value in sorted(totals.items())]


def _metrics(args: argparse.Namespace) -> int:
    import ray

    from tierserve.platform.settings import load_settings

    ray.init(address=load_settings().ray_address or "auto", logging_level="ERROR")
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        print(f"# {url}")
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        lines = ([line for line in text.splitlines() if PREFIX in line and args.match in line]
                 if args.raw else summarize(text, args.match))
        print("\n".join(lines) or "(no tierserve_* series yet: send a request, wait ~10 s)")
    return 0


def _tree_lines(trace: list[dict]) -> list[str]:
    start = min(s["start_ns"] for s in trace)
    ids = {s["span_id"] for s in trace}
    children: dict[str | None, list[dict]] = defaultdict(list)
    for s in sorted(trace, key=lambda s: s["start_ns"]):
        children[s["parent_span_id"] if s["parent_span_id"] in ids else None].append(s)
    lines = [f"trace {trace[0]['trace_id']}"]
    stack = [(s, 1) for s in reversed(children[None])]
    while stack:
        span, depth = stack.pop()
        where = f"{span['resource'].get('tierserve.component', '?')}:" \
                f"{span['resource'].get('process.pid', '?')}"
        offset_ms = (span["start_ns"] - start) / 1e6
        duration_ms = (span["end_ns"] - span["start_ns"]) / 1e6
        failed = "  ERROR" if span["status"] == "error" else ""
        lines.append(f"{'  ' * depth}{span['name']:<{28 - 2 * depth}} {where:<14} "
                     f"+{offset_ms:8.1f} ms {duration_ms:8.1f} ms{failed}")
        stack.extend((c, depth + 1) for c in reversed(children[span["span_id"]]))
    return lines


def render_traces(spans: list[dict], request_id: str | None = None, last: int = 5) -> str:
    """Indented span trees, one per trace: name, process, start offset and duration."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        by_trace[span["trace_id"]].append(span)
    traces = sorted(by_trace.values(), key=lambda t: min(s["start_ns"] for s in t))
    if request_id is not None:
        traces = [t for t in traces if any(
            s["attributes"].get("tierserve.request_id") == request_id for s in t)]
    return "\n".join(line for trace in traces[-last:] for line in _tree_lines(trace))


def _traces(args: argparse.Namespace) -> int:
    from tierserve.observability.tracing import read_span_file

    spans = read_span_file(args.file)
    if not spans:
        print(f"no spans in {args.file}")
        return 1
    print(render_traces(spans, args.request_id, args.last))
    return 0
