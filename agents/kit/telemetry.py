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
    """Install this process's tracer provider (once, at the process edge); OTLP export when configured."""
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
