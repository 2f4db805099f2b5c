"""The servers' pure parts and typed clients, against httpx.MockTransport (no processes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.kit.mcp_pool import McpEndpoint, McpPool
from mcp_servers.common import BackendConfig, downsample, trim
from mcp_servers.kubernetes import KubernetesServerConfig
from mcp_servers.kubernetes import build_server as build_kubernetes
from mcp_servers.kubernetes.objects import redact
from mcp_servers.pagerduty import PagerDutyServerConfig
from mcp_servers.pagerduty import build_server as build_pagerduty
from mcp_servers.prometheus import PrometheusServerConfig
from mcp_servers.prometheus import build_server as build_prometheus
from mcp_servers.prometheus.server import pod_regex
from protocol.kube_reading import fields_to_pointers
from protocol.models import REDACTED

Handler = Callable[[httpx.Request], httpx.Response]


def mock(handler: Handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_fields_v1_become_json_pointers() -> None:
    assert fields_to_pointers({"f:spec": {"f:replicas": {}}}) == ["/spec/replicas"]
    assert fields_to_pointers({"f:spec": {}}) == ["/spec"]
    live = {"spec": {"containers": [{"name": "sidecar"}, {"name": "app"}]}}
    fields = {"f:metadata": {"f:annotations": {"f:a/b~c": {}}},
              "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}}}}}
    assert fields_to_pointers(fields, live) == [
        "/metadata/annotations/a~1b~0c", "/spec/containers/1", "/spec/containers/1/image",
    ]


def test_secret_values_redacted_and_nothing_else() -> None:
    secret = {"kind": "Secret", "data": {"a": "c2VjcmV0"}, "stringData": {"b": "plain"},
              "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"a":"x"}}'}}}
    out = redact(secret)
    assert out["data"] == {"a": REDACTED} and out["stringData"] == {"b": REDACTED}
    assert "c2VjcmV0" not in json.dumps(out) and "plain" not in json.dumps(out) and '"x"' not in json.dumps(out)
    assert secret["data"] == {"a": "c2VjcmV0"}  # the input is not modified
    config_map = {"kind": "ConfigMap", "data": {"a": "visible"}}
    assert redact(config_map) == config_map


def test_bounding_keeps_ends_and_says_what_it_cut() -> None:
    points = list(range(1000))
    kept = downsample(points, 120)
    assert len(kept) == 120 and kept[0] == 0 and kept[-1] == 999
    items, note = trim(list(range(10)), 3, "events")
    assert items == [0, 1, 2] and note == "events: kept 3 of 10"
    assert trim([1], 3, "x") == ([1], "")


def test_pod_regex_matches_controller_pods_only() -> None:
    import re

    regex = re.compile(pod_regex("api").replace("\\\\", "\\"))
    assert regex.fullmatch("api-7c9d8-abcde") and regex.fullmatch("api-0")
    assert not regex.fullmatch("api-worker-7c9d8-abcde") and not regex.fullmatch("apix-1")


def prom_handler(request: httpx.Request) -> httpx.Response:
    query = request.url.params["query"]
    if query == "bad(":
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error at char 4"})
    if request.url.path == "/api/v1/query_range":
        values = [[1_700_000_000 + i * 15, str(i)] for i in range(500)]
        series = [{"metric": {"pod": f"p{n}"}, "values": values} for n in range(60)]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": series}})
    return httpx.Response(200, json={"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}})


async def test_prometheus_bounds_and_relays_query_errors() -> None:
    server = build_prometheus(PrometheusServerConfig(backend=BackendConfig(url="http://prom")),
                              transport=mock(prom_handler))
    async with Client(server) as client:
        big = await client.call_tool("query_range", {"promql": "x", "start": "2026-11-20T10:00:00Z",
                                               "end": "2026-11-20T12:00:00Z"})
        bad = await client.call_tool("query", {"promql": "bad(", "time": "2026-11-20T10:00:00Z"})
        nan = await client.call_tool("query", {"promql": "1", "time": "2026-11-20T10:00:00Z"})
    result = big.structured_content or {}
    assert result["truncated"] is True and len(result["series"]) == 50
    assert all(len(s["points"]) == 120 for s in result["series"])
    assert "series: kept 50 of 60" in result["note"]
    assert bad.is_error and "prometheus rejected the request" in bad.content[0].text  # type: ignore[union-attr]
    assert "parse error at char 4" in bad.content[0].text  # type: ignore[union-attr]
    assert (nan.structured_content or {})["series"][0]["points"][0]["v"] is None


async def test_prometheus_query_schemas_require_what_the_calls_need() -> None:
    server = build_prometheus(PrometheusServerConfig(backend=BackendConfig(url="http://prom")),
                              transport=mock(prom_handler))
    async with Client(server) as client:
        schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        instant = await client.call_tool("query", {"promql": "up"})
        ranged = await client.call_tool("query_range", {"promql": "up", "start": "2026-11-20T10:00:00Z"})
        backwards = await client.call_tool("query_range", {"promql": "up", "start": "2026-11-20T10:00:00Z",
                                                           "end": "2026-11-20T09:00:00Z"})
    assert set(schemas["query"]["required"]) == {"promql", "time"}
    assert set(schemas["query_range"]["required"]) == {"promql", "start", "end"}
    assert instant.is_error and "time" in instant.content[0].text  # type: ignore[union-attr]
    assert ranged.is_error and "end" in ranged.content[0].text  # type: ignore[union-attr]
    assert backwards.is_error and "the end must be after the start" in backwards.content[0].text  # type: ignore[union-attr]


async def test_pagerduty_resolves_a_service_name_and_sends_its_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/services":
            return httpx.Response(200, json={"services": [{"id": "PX2", "name": "payments-api-canary"},
                                                          {"id": "PX1", "name": "payments-api"}], "more": False})
        created = "2026-11-20T10:00:00Z"
        incident = {"id": "Q1", "title": "t", "status": "triggered", "created_at": created,
                    "service": {"id": "PX1", "summary": "payments-api"}, "priority": None, "resolved_at": None}
        return httpx.Response(200, json={"incidents": [incident], "more": False})

    config = PagerDutyServerConfig(backend=BackendConfig(url="http://pd", token="k", auth_scheme="Token token="))
    async with Client(build_pagerduty(config, transport=mock(handler))) as client:
        result = await client.call_tool("incidents", {"service": "payments-api", "since": "2026-11-20T09:00:00Z",
                                                      "until": "2026-11-20T11:00:00Z"})
    content = result.structured_content or {}
    assert content["service_id"] == "PX1" and [i["id"] for i in content["incidents"]] == ["Q1"]  # deduplicated
    assert all(r.headers["authorization"] == "Token token=k" for r in seen)
    assert all(r.url.params.get_list("service_ids[]") == ["PX1"] for r in seen if r.url.path == "/incidents")


async def test_spans_continue_the_callers_trace() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def handler(request: httpx.Request) -> httpx.Response:
        assert "traceparent" in request.headers  # the trace continues to the backend too
        return httpx.Response(200, json={"kind": "Namespace", "metadata": {"name": "a"}})

    server = build_kubernetes(KubernetesServerConfig(backend=BackendConfig(url="http://kube")),
                              transport=mock(handler))
    async with Client(server) as client:
        with provider.get_tracer("test").start_as_current_span("agent") as parent:
            result = await client.call_tool("namespace", {"name": "a"})
    assert not result.is_error
    trace_id = parent.get_span_context().trace_id
    ours = [s for s in exporter.get_finished_spans() if s.name == "kubernetes.namespace"]
    assert ours and all(s.context.trace_id == trace_id for s in ours)
    server_side = [s for s in exporter.get_finished_spans() if s.name == "tools/call namespace"]
    assert server_side and server_side[0].context.trace_id == trace_id


async def test_pool_never_raises_for_unreachable_or_unknown_servers() -> None:
    observed = datetime(2026, 11, 20, tzinfo=UTC)
    async with McpPool({"kubernetes": McpEndpoint(url="http://127.0.0.1:9/mcp")}, call_timeout_s=1.0) as pool:
        down = await pool.call("kubernetes", "namespace", {"name": "a"}, evidence_id="e1", observed_at=observed)
        unknown = await pool.call("nope", "x", {}, evidence_id="e2", observed_at=observed)
    assert down.error and "kubernetes.namespace" in down.error and down.value is None
    assert unknown.error and "no MCP server named 'nope'" in unknown.error


@pytest.mark.parametrize("scheme", ["Bearer", "Token token="])
def test_backend_auth_header(scheme: str) -> None:
    headers = BackendConfig(url="http://x", token="t", auth_scheme=scheme).headers()
    assert headers["Authorization"] in ("Bearer t", "Token token=t")
