"""The OTLP exporters deliver spans to a collector: a minimal OTLP/gRPC and OTLP/HTTP
receiver runs in the test process and decodes what arrives."""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tierserve.config import ObservabilityConfig
from tierserve.observability.tracing import setup_tracing


def names(request: trace_service_pb2.ExportTraceServiceRequest) -> list[tuple[str, str]]:
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope in resource_spans.scope_spans:
            found += [(resource["service.name"], span.name) for span in scope.spans]
    return found


def send_two_spans(config: ObservabilityConfig) -> None:
    tracing = setup_tracing(config, "router")
    root = tracing.start_span("router.request", kind="server")
    with tracing.span("router.classify", root):
        pass
    root.end()
    tracing.force_flush(10)
    tracing.shutdown()


def test_otlp_grpc_delivers_spans():
    received = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            received.extend(names(request))
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        send_two_spans(ObservabilityConfig(otlp_endpoint=f"http://127.0.0.1:{port}",
                                           service_name="ts-grpc"))
    finally:
        server.stop(0)
    assert sorted(received) == [("ts-grpc", "router.classify"), ("ts-grpc", "router.request")]


def test_otlp_http_delivers_spans():
    received, paths = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            paths.append(self.path)
            received.extend(names(trace_service_pb2.ExportTraceServiceRequest.FromString(body)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        send_two_spans(ObservabilityConfig(
            otlp_endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces",
            otlp_protocol="http", service_name="ts-http"))
    finally:
        server.shutdown()
    assert paths == ["/v1/traces"]
    assert sorted(received) == [("ts-http", "router.classify"), ("ts-http", "router.request")]
