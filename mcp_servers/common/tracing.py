"""Light OpenTelemetry for the MCP servers.

The SDK already opens a SERVER span per tools/call whose parent is the trace context carried in
the request's `_meta` (W3C traceparent). Our spans (one per backend call) nest under it, and the
backend's httpx client is instrumented so the same trace continues to the backend over HTTP.
Nothing is recorded until a process installs a tracer provider (`setup_tracing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span

_tracer = trace.get_tracer("driftwise.mcp")


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> None:
    """Install this process's tracer provider; spans go to OTLP when an endpoint is configured."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)


def instrument(http: httpx.AsyncClient) -> None:
    """Propagate the current trace to the backend and record one client span per request."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(http)


@contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[Span]:
    with _tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
