"""Grafana's HTTP API: health, search, annotations and datasources."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox.http import backend, bearer, json_response
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World


def _int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"{name} must be a number (epoch milliseconds)") from None


def _dashboards(world: World) -> list[dict[str, Any]]:
    """Declared dashboards, plus one per dashboard UID the annotations point at."""
    out = [dict(d) for d in world.dashboards]
    known = {d.get("uid") for d in out}
    for ann in world.annotations:
        uid = ann.get("dashboardUID")
        if uid and uid not in known:
            known.add(uid)
            out.append({"id": ann.get("dashboardId") or len(out) + 1, "uid": uid,
                        "title": uid.replace("-", " ").title(), "tags": []})
    for d in out:
        d.setdefault("type", "dash-db")
        d.setdefault("tags", [])
        d.setdefault("uri", f"db/{d.get('uid')}")
        d.setdefault("url", f"/d/{d.get('uid')}")
        d.setdefault("isStarred", False)
    return out


def routes(sandbox: Sandbox) -> list[Route]:
    api = backend(
        sandbox, "grafana",
        authorized=lambda r: bearer(r) == sandbox.tokens.grafana,
        unauthorized=lambda r: json_response({"message": "Unauthorized", "traceID": ""}, 401),
        no_world=lambda: json_response({"message": "no scenario is active in the sandbox"}, 404),
    )

    async def health(request: Request) -> Response:
        world = sandbox.world
        if world is not None and "grafana" in world.down:
            return Response("grafana is unavailable (scenario marks it down)\n", status_code=503)
        return json_response({"commit": "sandbox", "database": "ok", "version": "11.3.0"})

    @api
    async def annotations(request: Request, world: World) -> Response:
        q = request.query_params
        try:
            start, end = _int(q.get("from"), "from"), _int(q.get("to"), "to")
            limit = _int(q.get("limit"), "limit") or 100
        except ValueError as exc:
            return json_response({"message": str(exc)}, 400)
        tags = q.getlist("tags")
        uid = q.get("dashboardUID")
        dash_id = q.get("dashboardId")
        kind = q.get("type")
        out = []
        for ann in world.annotations:
            t, t_end = ann.get("time", 0), ann.get("timeEnd", ann.get("time", 0))
            if start is not None and t_end < start:
                continue
            if end is not None and t > end:
                continue
            if tags and not set(tags) <= set(ann.get("tags") or []):
                continue
            if uid and ann.get("dashboardUID") != uid:
                continue
            if dash_id and str(ann.get("dashboardId")) != dash_id:
                continue
            if (kind == "alert" and not ann.get("alertId")) or (kind == "annotation" and ann.get("alertId")):
                continue
            out.append(ann)
        out.sort(key=lambda a: (a.get("time", 0), a.get("id", 0)), reverse=True)
        return json_response(out[:limit])

    @api
    async def search(request: Request, world: World) -> Response:
        q = request.query_params
        query = (q.get("query") or "").lower()
        tags = q.getlist("tag")
        uids = q.getlist("dashboardUIDs")
        out = [d for d in _dashboards(world)
               if query in str(d.get("title", "")).lower()
               and set(tags) <= set(d.get("tags") or [])
               and (not uids or d.get("uid") in uids)]
        limit = int(q.get("limit") or 1000)
        return json_response(out[:limit])

    @api
    async def datasources(request: Request, world: World) -> Response:
        declared = world.datasources or [{
            "id": 1, "uid": "prometheus", "orgId": 1, "name": "Prometheus", "type": "prometheus",
            "typeName": "Prometheus", "access": "proxy", "url": "http://prometheus:9090", "user": "",
            "database": "", "basicAuth": False, "isDefault": True, "jsonData": {}, "readOnly": False,
        }]
        return json_response(declared)

    return [
        Route("/api/health", health),
        Route("/api/annotations", annotations),
        Route("/api/search", search),
        Route("/api/datasources", datasources),
    ]
