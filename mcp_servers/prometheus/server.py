"""The Prometheus MCP server: raw PromQL, and a workload's traffic and memory from configurable PromQL."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Annotated, Any

import httpx
from mcp.server import MCPServer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mcp_servers.common.bounding import Limits, Notes, downsample, trim
from mcp_servers.common.errors import BadArguments
from mcp_servers.common.http import BackendConfig
from mcp_servers.common.server import Backend, ServerAuth, add_read_only_tool, new_server
from mcp_servers.common.tracing import span
from mcp_servers.prometheus.client import PrometheusClient, PromResult
from protocol.context import MemoryReport, MetricSeries, PodMemory, QueryResult, SamplePoint, TrafficReport

MAX_RANGE_POINTS = 11_000
"""Prometheus refuses range queries of more points per series than this."""

NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$"
"""Kubernetes object names; checked because they are spliced into PromQL."""


class WorkloadQueries(BaseModel):
    """The PromQL behind the workload tools; `{namespace}`, `{service}`, `{pod_regex}`, `{window}` are filled in."""

    model_config = ConfigDict(extra="forbid")

    request_rate: str = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}"}}[{window}]))'
    error_rate: str = (
        'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}",code=~"5.."}}[{window}]))'
    )
    memory_working_set: str = (
        'max by (pod, container) (container_memory_working_set_bytes{{namespace="{namespace}",'
        'pod=~"{pod_regex}",container!=""}})'
    )
    rate_window: str = "5m"


class PrometheusServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: BackendConfig
    queries: WorkloadQueries = Field(default_factory=WorkloadQueries)
    limits: Limits = Field(default_factory=Limits)


Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=253)]


def pod_regex(workload: str) -> str:
    """Pods a workload's controller creates: <name>-<hash>-<id> (Deployment), <name>-<id> (StatefulSet, DaemonSet)."""
    return workload.replace(".", "\\\\.") + "-([a-z0-9]+-)?[a-z0-9]+"


def _step(start: datetime, end: datetime, max_points: int) -> float:
    return max(1.0, math.ceil((end - start).total_seconds() / max(max_points - 1, 1)))


def _scalar_at(result: PromResult) -> float | None:
    """The one value of an aggregated instant query; None when no series matched."""
    values = [p[1] for s in result.series for p in s.points if p[1] is not None]
    return sum(values) if values else None


def _mean(result: PromResult) -> float | None:
    values = [p[1] for s in result.series for p in s.points if p[1] is not None]
    return sum(values) / len(values) if values else None


def _ratio(errors: float | None, requests: float | None) -> float | None:
    if requests is None or requests <= 0:
        return None
    return min(max((errors or 0.0) / requests, 0.0), 1.0)


def _window_order(start: datetime, end: datetime, what: str) -> None:
    if end <= start:
        raise BadArguments(f"{what}: the end must be after the start")


def build_server(
    config: PrometheusServerConfig, *, auth: ServerAuth | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> MCPServer[Any]:
    """The server; `transport` replaces the network for unit tests (httpx.MockTransport)."""
    backend = Backend(config.backend, PrometheusClient, transport)
    limits, queries = config.limits, config.queries
    server = new_server(
        "prometheus",
        "Read-only access to Prometheus metrics. Every tool takes explicit times (RFC 3339); none assumes "
        "'now'. Use workload_traffic / workload_memory for a workload's load, query / query_range for anything else.",
        auth=auth,
        lifespan=backend.lifespan,
    )

    def _query_result(promql: str, result: PromResult, notes: Notes) -> QueryResult:
        kept, note = trim(result.series, limits.max_series, "series")
        notes.cut(note)
        series = []
        for s in kept:
            points = downsample(s.points, limits.max_points)
            if len(points) < len(s.points):
                notes.cut(f"points downsampled to {limits.max_points} per series")
            series.append(MetricSeries(labels=s.labels, points=[SamplePoint(t=t, v=v) for t, v in points]))
        return QueryResult(
            query=promql, result_type=result.result_type, series=series, truncated=notes.truncated,
            note=notes.text,
        )

    # An instant and a range query are two tools, as they are two Prometheus endpoints, so that each
    # schema's `required` is exactly what the call needs (one tool with optional `time` / `start`+`end`
    # advertised `promql` alone as enough).
    async def query(
        promql: Annotated[str, Field(min_length=1, max_length=4000, description="a PromQL expression")],
        time: Annotated[AwareDatetime, Field(description="evaluate the expression at this moment (RFC 3339)")],
    ) -> QueryResult:
        with span("prometheus.query"):
            result = await backend.client.query(promql, time)
        return _query_result(promql, result, Notes())

    async def query_range(
        promql: Annotated[str, Field(min_length=1, max_length=4000, description="a PromQL expression")],
        start: Annotated[AwareDatetime, Field(description="range start (RFC 3339)")],
        end: Annotated[AwareDatetime, Field(description="range end (RFC 3339), after `start`")],
        step_s: Annotated[float | None, Field(gt=0, description="resolution in seconds; default: the range "
                                                                 "split into the point limit")] = None,
    ) -> QueryResult:
        _window_order(start, end, "query_range")
        notes = Notes()
        step = step_s or _step(start, end, limits.max_points)
        span_s = (end - start).total_seconds()
        if span_s / step > MAX_RANGE_POINTS:
            step = math.ceil(span_s / MAX_RANGE_POINTS)
            notes.add(f"step raised to {step}s (Prometheus allows {MAX_RANGE_POINTS} points)")
        with span("prometheus.query_range"):
            result = await backend.client.query_range(promql, start, end, step)
        return _query_result(promql, result, notes)

    async def workload_traffic(
        namespace: Annotated[Name, Field(description="Kubernetes namespace of the workload")],
        service: Annotated[Name, Field(description="the workload's service name (metric label `service`)")],
        at: Annotated[AwareDatetime, Field(description="the moment to measure (RFC 3339), e.g. the drift time")],
        baseline_start: Annotated[AwareDatetime, Field(description="start of the normal-load window to compare to")],
        baseline_end: Annotated[AwareDatetime, Field(description="end of the baseline window")],
    ) -> TrafficReport:
        _window_order(baseline_start, baseline_end, "baseline")
        fill = {"namespace": namespace, "service": service, "window": queries.rate_window}
        requests_q = queries.request_rate.format(**fill)
        errors_q = queries.error_rate.format(**fill)
        step = _step(baseline_start, baseline_end, limits.max_points)
        client = backend.client
        with span("prometheus.workload_traffic", namespace=namespace, service=service):
            # Four independent reads: in parallel, so the tool costs one backend round trip, not four.
            answers = await asyncio.gather(
                client.query(requests_q, at), client.query(errors_q, at),
                client.query_range(requests_q, baseline_start, baseline_end, step),
                client.query_range(errors_q, baseline_start, baseline_end, step),
            )
        now_requests, now_errors = _scalar_at(answers[0]), _scalar_at(answers[1])
        base_requests, base_errors = _mean(answers[2]), _mean(answers[3])
        notes = Notes()
        if now_requests is None:
            notes.add(f"no request series for {namespace}/{service} at {at.isoformat()}")
        if base_requests is None:
            notes.add("no request series in the baseline window")
        change = None
        if now_requests is not None and base_requests:
            change = now_requests / base_requests
        return TrafficReport(
            namespace=namespace, service=service, at=at, baseline_start=baseline_start, baseline_end=baseline_end,
            request_rate=now_requests, baseline_request_rate=base_requests,
            error_ratio=_ratio(now_errors, now_requests), baseline_error_ratio=_ratio(base_errors, base_requests),
            rate_change=change, note=notes.text,
        )

    async def workload_memory(
        namespace: Annotated[Name, Field(description="Kubernetes namespace of the workload")],
        workload: Annotated[Name, Field(description="Deployment/StatefulSet/DaemonSet name; its pods are matched")],
        start: Annotated[AwareDatetime, Field(description="window start (RFC 3339)")],
        end: Annotated[AwareDatetime, Field(description="window end (RFC 3339)")],
    ) -> MemoryReport:
        _window_order(start, end, "window")
        promql = queries.memory_working_set.format(
            namespace=namespace, pod_regex=pod_regex(workload), window=queries.rate_window, service=workload
        )
        with span("prometheus.workload_memory", namespace=namespace, workload=workload):
            result = await backend.client.query_range(promql, start, end, _step(start, end, limits.max_points))
        pods = []
        for s in result.series:
            values = [v for _, v in s.points if v is not None]
            last = next((v for _, v in reversed(s.points) if v is not None), None)
            pods.append(PodMemory(pod=s.labels.get("pod", ""), container=s.labels.get("container", ""),
                                  max_bytes=max(values) if values else None, last_bytes=last))
        pods.sort(key=lambda p: -(p.max_bytes or 0.0))
        kept, note = trim(pods, limits.max_items, "pods (largest first)")
        notes = Notes()
        notes.cut(note)
        if not pods:
            notes.add(f"no working-set series for pods of {namespace}/{workload}")
        return MemoryReport(namespace=namespace, workload=workload, start=start, end=end, pods=kept,
                            truncated=notes.truncated, note=notes.text)

    add_read_only_tool(
        server, query, title="PromQL instant query",
        description="Evaluate a PromQL expression at one moment `time`. Returns the series with their labels and "
        "their value at that moment (unix seconds, value); long answers are trimmed and `truncated` says so. "
        "For values over a time range use query_range.",
    )
    add_read_only_tool(
        server, query_range, title="PromQL range query",
        description="Evaluate a PromQL expression over [`start`, `end`] every `step_s` seconds. Returns the series "
        "with their labels and points (unix seconds, value); long answers are downsampled and `truncated` "
        "says so.",
    )
    add_read_only_tool(
        server, workload_traffic, title="Workload traffic vs baseline",
        description="A workload's request rate (requests/s) and 5xx error ratio at `at`, against their means over "
        "the baseline window [`baseline_start`, `baseline_end`]. `rate_change` = request_rate / baseline rate: "
        "well above 1 means a load spike. Null values mean no data.",
    )
    add_read_only_tool(
        server, workload_memory, title="Workload memory per pod",
        description="Working-set memory (bytes) of each pod and container of a workload over [`start`, `end`]: the "
        "maximum and the last value. Compare with the container memory limit from Kubernetes to judge "
        "pressure or OOM risk.",
    )
    return server
