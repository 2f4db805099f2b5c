"""Grafana's HTTP API: health, frontend settings, search, dashboards by UID, annotations and datasources."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox import error_bodies
from driftwise.sandbox.http import backend, bearer, json_response
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World

VERSION = "11.3.0"


def grafana_error(status: int, message: str) -> Response:
    """Grafana's error body: {"message"} (with the traceID its API adds)."""
    return json_response(error_bodies.grafana(status, message), status)


def _datasources(world: World) -> list[dict[str, Any]]:
    return world.datasources or [{
        "id": 1, "uid": "prometheus", "orgId": 1, "name": "Prometheus", "type": "prometheus",
        "typeName": "Prometheus", "access": "proxy", "url": "http://prometheus:9090", "user": "",
        "database": "", "basicAuth": False, "isDefault": True, "jsonData": {}, "readOnly": False,
    }]


def _dashboard_model(d: dict[str, Any], world: World) -> dict[str, Any]:
    """GET /api/dashboards/uid/{uid}: the dashboard JSON model and its meta, as Grafana stores a provisioned one."""
    uid = str(d.get("uid"))
    stamp = world.now.isoformat().replace("+00:00", "Z")
    return {
        "dashboard": {"id": d.get("id"), "uid": uid, "title": d.get("title", uid), "tags": d.get("tags") or [],
                      "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": False,
                      "time": {"from": "now-6h", "to": "now"}, "panels": d.get("panels") or [],
                      "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                                "enable": True, "hide": True, "name": "Annotations & Alerts",
                                                "type": "dashboard"}]}},
        "meta": {"type": "db", "canSave": False, "canEdit": False, "canAdmin": False, "canStar": False,
                 "canDelete": False, "slug": uid, "url": d.get("url") or f"/d/{uid}", "expires": "0001-01-01T00:00:00Z",
                 "created": stamp, "updated": stamp, "updatedBy": "admin", "createdBy": "admin", "version": 1,
                 "hasAcl": False, "isFolder": False, "folderId": 0, "folderUid": "", "folderTitle": "General",
                 "folderUrl": "", "provisioned": True, "provisionedExternalId": f"{uid}.json"},
    }


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
        unauthorized=lambda r: grafana_error(401, "Unauthorized"),
        no_world=lambda: grafana_error(404, "no scenario is active in the sandbox"),
    )

    async def health(request: Request) -> Response:
        world = sandbox.world
        if world is not None and "grafana" in world.down:
            return Response("grafana is unavailable (scenario marks it down)\n", status_code=503)
        return json_response({"commit": "sandbox", "database": "ok", "version": VERSION})

    @api
    async def frontend_settings(request: Request, world: World) -> Response:
        sources = _datasources(world)
        default = next((d for d in sources if d.get("isDefault")), sources[0] if sources else None)
        return json_response({
            "appUrl": str(request.base_url), "appSubUrl": "", "defaultDatasource": (default or {}).get("name", ""),
            "datasources": {d["name"]: {"id": d.get("id"), "uid": d.get("uid"), "type": d.get("type"),
                                        "name": d["name"], "isDefault": bool(d.get("isDefault")),
                                        "jsonData": d.get("jsonData") or {}, "access": d.get("access", "proxy"),
                                        "url": f"/api/datasources/proxy/uid/{d.get('uid')}"} for d in sources},
            "buildInfo": {"version": VERSION, "commit": "sandbox", "edition": "Open Source", "env": "production",
                          "latestVersion": VERSION, "hasUpdate": False, "hideVersion": False},
            "featureToggles": {}, "anonymousEnabled": False, "disableLoginForm": False, "unifiedAlertingEnabled": True,
            "authProxyEnabled": False, "ldapEnabled": False, "samlEnabled": False,
        })

    @api
    async def dashboard_by_uid(request: Request, world: World) -> Response:
        uid = request.path_params["uid"]
        found = next((d for d in _dashboards(world) if d.get("uid") == uid), None)
        if found is None:
            return grafana_error(404, "Dashboard not found")
        return json_response(_dashboard_model(found, world))

    @api
    async def annotation_tags(request: Request, world: World) -> Response:
        q = request.query_params
        prefix = q.get("tag") or ""
        counts: dict[str, int] = {}
        for ann in world.annotations:
            for tag in ann.get("tags") or []:
                if str(tag).startswith(prefix):
                    counts[str(tag)] = counts.get(str(tag), 0) + 1
        try:
            limit = _int(q.get("limit"), "limit") or 100
        except ValueError as exc:
            return grafana_error(400, str(exc))
        tags = [{"tag": t, "count": n} for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]
        return json_response({"result": {"tags": tags}})

    @api
    async def datasource_health(request: Request, world: World) -> Response:
        found = next((d for d in _datasources(world) if d.get("uid") == request.path_params["uid"]), None)
        if found is None:
            return grafana_error(404, "Data source not found")
        # the sandbox's Grafana reaches the sandbox's Prometheus unless the scenario marks it down
        if found.get("type") == "prometheus" and "prometheus" in world.down:
            return json_response({"status": "ERROR", "message": "Prometheus is unavailable"}, 400)
        return json_response({"status": "OK", "message": "Successfully queried the Prometheus API."})

    @api
    async def datasource_by(request: Request, world: World) -> Response:
        p = request.path_params
        key, value = ("uid", p["uid"]) if "uid" in p else ("name", p["name"]) if "name" in p else ("id", p["id"])
        found = next((d for d in _datasources(world) if str(d.get(key)) == str(value)), None)
        if found is None:
            return grafana_error(404, "Data source not found")
        return json_response(found)

    @api
    async def annotations(request: Request, world: World) -> Response:
        q = request.query_params
        try:
            start, end = _int(q.get("from"), "from"), _int(q.get("to"), "to")
            limit = _int(q.get("limit"), "limit") or 100
        except ValueError as exc:
            return grafana_error(400, str(exc))
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
        return json_response(_datasources(world))

    return [
        Route("/api/health", health),
        Route("/api/annotations", annotations),
        Route("/api/search", search),
        Route("/api/datasources", datasources),
        Route("/api/frontend/settings", frontend_settings),
        Route("/api/dashboards/uid/{uid}", dashboard_by_uid),
        Route("/api/annotations/tags", annotation_tags),
        Route("/api/datasources/uid/{uid}/health", datasource_health),
        Route("/api/datasources/uid/{uid}", datasource_by),
        Route("/api/datasources/name/{name}", datasource_by),
        Route("/api/datasources/{id:int}", datasource_by),
    ]
