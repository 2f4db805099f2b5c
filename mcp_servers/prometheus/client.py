"""A typed async client of Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from mcp_servers.common.errors import BackendBadResponse, BackendRejected
from mcp_servers.common.http import get_json

BACKEND = "prometheus"


class PromSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: dict[str, str]
    points: list[tuple[float, float | None]]


class PromResult(BaseModel):
    """`data` of a successful answer: resultType and its series (a scalar or string is one unlabelled series)."""

    model_config = ConfigDict(extra="forbid")
    result_type: str
    series: list[PromSeries]


def _value(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BackendBadResponse(BACKEND, f"sample value {raw!r} is not a number") from None
    return None if math.isnan(value) or math.isinf(value) else value


def _point(raw: Any) -> tuple[float, float | None]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise BackendBadResponse(BACKEND, f"sample {raw!r} is not [time, value]")
    return float(raw[0]), _value(raw[1])


def _parse(body: Any) -> PromResult:
    if not isinstance(body, dict):
        raise BackendBadResponse(BACKEND, "answer is not a JSON object")
    if body.get("status") != "success":
        raise BackendRejected(BACKEND, f"{body.get('errorType', 'error')}: {body.get('error', 'unknown error')}")
    data = body.get("data")
    if not isinstance(data, dict) or "resultType" not in data:
        raise BackendBadResponse(BACKEND, "answer has no data.resultType")
    kind = data["resultType"]
    result = data.get("result")
    if kind in ("scalar", "string"):
        return PromResult(result_type=kind, series=[PromSeries(labels={}, points=[_point(result)])])
    if not isinstance(result, list):
        raise BackendBadResponse(BACKEND, "data.result is not a list")
    series = []
    for item in result:
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        if kind == "matrix":
            points = [_point(p) for p in item.get("values") or []]
        else:
            points = [_point(item["value"])] if "value" in item else []
        series.append(PromSeries(labels=labels, points=points))
    return PromResult(result_type=kind, series=series)


def _ts(at: datetime) -> str:
    return f"{at.timestamp():.3f}"


class PrometheusClient:
    """Reads Prometheus over its HTTP API; every failure is a BackendError naming prometheus."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def query(self, promql: str, at: datetime) -> PromResult:
        """An instant query evaluated at `at` (Prometheus's `time`)."""
        body = await get_json(self._http, BACKEND, "/api/v1/query", {"query": promql, "time": _ts(at)})
        return _parse(body)

    async def query_range(self, promql: str, start: datetime, end: datetime, step_s: float) -> PromResult:
        params = {"query": promql, "start": _ts(start), "end": _ts(end), "step": f"{step_s:g}"}
        return _parse(await get_json(self._http, BACKEND, "/api/v1/query_range", params))
