"""OpenTelemetry for a kit process: one tracer provider, Starlette server spans, httpx client spans."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.applications import Starlette

TRACER_NAME = "driftwise.agents.kit"


def setup_tracing(service: str, otlp_endpoint: str | None, namespace: str = "driftwise") -> TracerProvider:
    """This process's tracer provider (once, at the process edge), installed when spans have somewhere to go.

    With an OTLP endpoint the provider records and exports every span. Without one, nothing would
    ever read a span, so the provider is returned but not installed: spans stay OpenTelemetry's
    non-recording ones (an incoming W3C trace context is still carried on to outgoing calls). That
    matters for latency: the A2A SDK alone opens dozens of internal spans per request, and
    recording them for nobody cost about a third of a specialist's CPU per request (as the MCP
    servers' CLI already does, the same choice: no endpoint, no provider).
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.namespace": namespace}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        trace.set_tracer_provider(provider)
    return provider


def instrument(app: Starlette, http: httpx.AsyncClient) -> None:
    """Server spans for every request (W3C trace context read), client spans for outgoing calls (written)."""
    StarletteInstrumentor.instrument_app(app)
    HTTPXClientInstrumentor.instrument_client(http)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)
