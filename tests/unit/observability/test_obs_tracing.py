"""Tracing setup from config, the JSON-lines file exporter, sampling and propagation."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tierserve.config import ObservabilityConfig, parse_config
from tierserve.errors import ConfigError
from tierserve.observability.tracing import Tracing, read_span_file, setup_tracing


def test_exporter_auto_follows_the_endpoint():
    assert ObservabilityConfig().span_exporter == "none"
    assert ObservabilityConfig(otlp_endpoint="http://collector:4317").span_exporter == "otlp"
    pinned = ObservabilityConfig(exporter="none", otlp_endpoint="http://c:4317")
    assert pinned.span_exporter == "none"


@pytest.mark.parametrize("block, field", [
    ({"exporter": "otlp"}, "otlp_endpoint"),
    ({"exporter": "file"}, "traces_file"),
    ({"sampling_ratio": 1.5}, "sampling_ratio"),
    ({"log_format": "xml"}, "log_format"),
])
def test_bad_observability_config_names_the_field(block, field):
    from tests.unit.conftest import small_config

    with pytest.raises(ConfigError) as err:
        parse_config(small_config(observability=block))
    assert "observability" in str(err.value) and field in str(err.value)


def test_none_exporter_is_disabled_and_imports_nothing():
    tracing = setup_tracing(ObservabilityConfig(), "router")
    assert not tracing.enabled and tracing.provider is None
    tracing.force_flush()
    tracing.shutdown()


def test_otlp_exporters_build_without_a_collector():
    for protocol, endpoint in (("grpc", "http://127.0.0.1:9"),
                               ("http", "http://127.0.0.1:9/v1/traces")):
        tracing = setup_tracing(ObservabilityConfig(otlp_endpoint=endpoint,
                                                    otlp_protocol=protocol), "router")
        assert tracing.enabled
        tracing.provider.shutdown()


def test_file_exporter_shared_by_two_processes_worth_of_providers(tmp_path):
    path = str(tmp_path / "spans" / "traces.jsonl")
    config = ObservabilityConfig(exporter="file", traces_file=path, export_delay_s=0.05)
    router, tier = setup_tracing(config, "router"), setup_tracing(config, "tier")
    root = router.start_span("router.request", kind="server", attributes={"a": 1})
    carrier = router.inject(root)
    assert carrier["traceparent"].startswith("00-")
    child = tier.start_span("tier.generate", tier.extract(carrier), kind="server")
    child.end()
    root.end()
    router.force_flush()
    tier.force_flush()
    records = {r["name"]: r for r in read_span_file(path)}
    assert records["tier.generate"]["parent_span_id"] == records["router.request"]["span_id"]
    assert records["tier.generate"]["trace_id"] == records["router.request"]["trace_id"]
    assert records["router.request"]["resource"]["tierserve.component"] == "router"
    assert records["router.request"]["attributes"] == {"a": 1}
    assert records["router.request"]["kind"] == "server"
    router.shutdown()
    tier.shutdown()


def test_unsampled_requests_stay_unsampled_downstream():
    spans = InMemorySpanExporter()
    config = ObservabilityConfig(sampling_ratio=0.0)
    router = setup_tracing(config, "router", exporter=spans)
    tier = setup_tracing(ObservabilityConfig(), "tier", exporter=spans)
    root = router.start_span("router.request")
    child = tier.start_span("tier.generate", tier.extract(router.inject(root)))
    child.end()
    root.end()
    assert spans.get_finished_spans() == ()


def test_span_context_manager_marks_errors():
    spans = InMemorySpanExporter()
    tracing = setup_tracing(ObservabilityConfig(), "router", exporter=spans)
    with pytest.raises(RuntimeError):
        with tracing.span("router.classify", x="y"):
            raise RuntimeError("no")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR" and span.attributes["x"] == "y"
    assert span.events[0].name == "exception"


def test_disabled_tracing_object():
    tracing = Tracing.disabled()
    assert not tracing.enabled
    assert tracing.extract(None) is None
