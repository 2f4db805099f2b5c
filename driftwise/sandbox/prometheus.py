"""Prometheus's HTTP API, answered by the builtin evaluator or proxied to a real Prometheus."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox.http import json_response
from driftwise.sandbox.prometheus_builtin import Evaluator, QueryError, Storage, parse, result_json
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
MAX_POINTS = 11000
BUILD_INFO = {"version": "2.42.0", "revision": "", "branch": "debian/sid", "buildUser": "", "buildDate": "",
              "goVersion": "go1.19.8"}


def bad_data(message: str, status: int = 400) -> Response:
    return json_response({"status": "error", "errorType": "bad_data", "error": message}, status)


def parse_time(value: str, name: str) -> float:
    """Prometheus accepts RFC 3339 or Unix seconds; returns Unix seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError
        return at.timestamp()
    except ValueError:
        raise ValueError(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp') from None


def parse_step(value: str) -> float:
    try:
        step = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f'invalid parameter "step": cannot parse "{value}" to a valid duration') from None
        step = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(step) or step <= 0:
        raise ValueError("invalid parameter \"step\": zero or negative query resolution step widths are not "
                         "accepted. Try a positive integer")
    return step


class PrometheusBackend(Protocol):
    async def handle(self, request: Request, world: World, now_s: float) -> Response: ...


class BuiltinBackend:
    """Answers from the world's samples; the evaluator is rebuilt when the world changes."""

    def __init__(self) -> None:
        self._world: World | None = None
        self._storage: Storage | None = None

    def storage(self, world: World) -> Storage:
        if self._world is not world or self._storage is None:
            self._storage = Storage(world.series)
            self._world = world
        return self._storage

    async def handle(self, request: Request, world: World, now_s: float) -> Response:
        params = await _params(request)
        path = request.url.path
        storage = self.storage(world)
        try:
            if path.endswith("/query"):
                return self._query(storage, params, now_s)
            if path.endswith("/query_range"):
                return self._query_range(storage, params)
            if path.endswith("/series"):
                return self._series(storage, params)
            if path.endswith("/labels"):
                return self._labels(storage, params)
            if "/label/" in path:
                name = request.path_params["name"]
                return self._label_values(storage, params, name)
            if path.endswith("/metadata"):
                return self._metadata(world, params)
            if path.endswith("/targets"):
                # the samples are backfilled, not scraped: like the real Prometheus fed this way, no targets
                return json_response({"status": "success", "data": {"activeTargets": [], "droppedTargets": []}})
            if path.endswith("/status/buildinfo"):
                return json_response({"status": "success", "data": BUILD_INFO})
        except (QueryError, ValueError) as exc:
            return bad_data(str(exc))
        return json_response({"status": "error", "errorType": "not_found", "error": "not found"}, 404)

    @staticmethod
    def _query(storage: Storage, params: dict[str, list[str]], now_s: float) -> Response:
        query = _one(params, "query")
        ts_s = parse_time(params["time"][0], "time") if params.get("time") else now_s
        ts_ms = round(ts_s * 1000)
        value = Evaluator(storage).instant(query, ts_ms)
        return json_response({"status": "success", "data": result_json(value, ts_ms)})

    @staticmethod
    def _query_range(storage: Storage, params: dict[str, list[str]]) -> Response:
        query = _one(params, "query")
        start = parse_time(_one(params, "start"), "start")
        end = parse_time(_one(params, "end"), "end")
        step = parse_step(_one(params, "step"))
        if end < start:
            raise ValueError('invalid parameter "end": end timestamp must not be before start time')
        if (end - start) / step > MAX_POINTS:
            raise ValueError("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                             "query resolution (?step=XX)")
        start_ms, end_ms = round(start * 1000), round(end * 1000)
        matrix = Evaluator(storage).range(query, start_ms, end_ms, round(step * 1000))
        return json_response({"status": "success", "data": result_json(matrix, end_ms)})

    @staticmethod
    def _selected(storage: Storage, params: dict[str, list[str]]) -> list[Any]:
        matches = params.get("match[]") or []
        if not matches:
            return storage.all()
        from driftwise.sandbox.prometheus_builtin import _matchers

        found: dict[int, Any] = {}
        for m in matches:
            expr = parse(m)
            if type(expr).__name__ != "VectorSelector":
                raise QueryError(f"invalid parameter \"match[]\": {m!r} is not a series selector")
            for s in storage.select(_matchers(expr)):
                found[id(s)] = s
        return list(found.values())

    def _series(self, storage: Storage, params: dict[str, list[str]]) -> Response:
        if not params.get("match[]"):
            raise ValueError("no match[] parameter provided")
        data = sorted((s.label_map for s in self._selected(storage, params)), key=lambda m: sorted(m.items()))
        return json_response({"status": "success", "data": data})

    def _labels(self, storage: Storage, params: dict[str, list[str]]) -> Response:
        names = sorted({k for s in self._selected(storage, params) for k in s.label_map})
        return json_response({"status": "success", "data": names})

    @staticmethod
    def _metadata(world: World, params: dict[str, list[str]]) -> Response:
        """Each metric's type, as a Prometheus that scraped the world's series would report it (no help, no unit)."""
        metric = (params.get("metric") or [""])[0]
        limit = int((params.get("limit") or ["0"])[0] or 0)
        data: dict[str, list[dict[str, str]]] = {}
        for s in world.series:
            name = s.labels["__name__"]
            if (not metric or name == metric) and name not in data:
                data[name] = [{"type": s.kind, "help": "", "unit": ""}]
        names = sorted(data)[:limit] if limit > 0 else sorted(data)
        return json_response({"status": "success", "data": {n: data[n] for n in names}})

    def _label_values(self, storage: Storage, params: dict[str, list[str]], name: str) -> Response:
        values = sorted({s.label_map[name] for s in self._selected(storage, params) if name in s.label_map})
        return json_response({"status": "success", "data": values})


def _one(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    if not values or values[0] == "":
        raise ValueError(f'invalid parameter "{name}": missing')
    return values[0]


async def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    if request.method == "POST":
        form = await request.form()
        for k, v in form.multi_items():
            if isinstance(v, str):
                params.setdefault(k, []).append(v)
    return params


def routes(sandbox: Sandbox, backend_: PrometheusBackend) -> list[Route]:
    async def api(request: Request) -> Response:
        world = sandbox.world
        if world is not None and "prometheus" in world.down:
            return Response("prometheus is unavailable (scenario marks it down)\n", status_code=503)
        if world is None:
            return json_response({"status": "error", "errorType": "unavailable",
                                  "error": "no scenario is active in the sandbox"}, 503)
        return await backend_.handle(request, world, sandbox.clock.now().timestamp())

    async def ready(request: Request) -> Response:
        world = sandbox.world
        if world is not None and "prometheus" in world.down:
            return Response("Service Unavailable", status_code=503)
        return Response("Prometheus Server is Ready.\n", media_type="text/plain")

    async def healthy(request: Request) -> Response:
        return Response("Prometheus Server is Healthy.\n", media_type="text/plain")

    methods = ["GET", "POST"]
    return [
        Route("/api/v1/query", api, methods=methods),
        Route("/api/v1/query_range", api, methods=methods),
        Route("/api/v1/series", api, methods=methods),
        Route("/api/v1/labels", api, methods=methods),
        Route("/api/v1/label/{name}/values", api, methods=["GET"]),
        Route("/api/v1/metadata", api, methods=["GET"]),
        Route("/api/v1/targets", api, methods=["GET"]),
        Route("/api/v1/status/buildinfo", api, methods=["GET"]),
        Route("/-/ready", ready),
        Route("/-/healthy", healthy),
    ]
