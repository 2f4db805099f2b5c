"""PagerDuty REST API v2: incidents, services and the current user, with its pagination and error shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox import error_bodies
from driftwise.sandbox.http import backend, json_response
from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World

_STATUSES = {"triggered", "acknowledged", "resolved"}
_ME = "PDRFTWS"
# The owner of the sandbox's token: a read-only service user, so that `GET /users/me` (which a user-level
# token answers, and clients call to check their credentials) names who is asking.
_CURRENT_USER: dict[str, Any] = {
    "id": _ME, "type": "user", "summary": "Driftwise", "self": f"https://api.pagerduty.com/users/{_ME}",
    "html_url": f"https://sandbox.pagerduty.com/users/{_ME}", "name": "Driftwise",
    "email": "driftwise@sandbox.invalid", "time_zone": "Etc/UTC", "color": "purple", "role": "read_only_user",
    "avatar_url": "https://secure.gravatar.com/avatar/0?d=mm", "description": "Driftwise's read-only token",
    "invitation_sent": False, "job_title": "drift decisions", "teams": [], "contact_methods": [],
    "notification_rules": [],
}


def pd_error(status: int, code: int, message: str, errors: list[str] | None = None) -> Response:
    return json_response(error_bodies.pagerduty(status, code, message, errors), status)


def _parse_time(value: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is not a valid ISO 8601 date") from None
    if at.tzinfo is None:
        raise ValueError(f"{name} must include a time zone")
    return at


def _pager(request: Request, items: list[Any], key: str) -> tuple[dict[str, Any], str | None]:
    q = request.query_params
    try:
        limit = int(q.get("limit", "25"))
        offset = int(q.get("offset", "0"))
    except ValueError:
        return {}, "limit and offset must be integers"
    if limit < 1 or offset < 0:
        return {}, "limit must be positive and offset not negative"
    limit = min(limit, 100)
    page = items[offset:offset + limit]
    body = {key: page, "limit": limit, "offset": offset, "more": offset + len(page) < len(items),
            "total": len(items) if q.get("total") == "true" else None}
    return body, None


def _incident(inc: dict[str, Any]) -> dict[str, Any]:
    out = dict(inc)
    out.setdefault("type", "incident")
    out.setdefault("summary", inc.get("title"))
    out.setdefault("self", f"https://api.pagerduty.com/incidents/{inc.get('id')}")
    out.setdefault("resolved_at", None)
    out.setdefault("priority", None)
    out.setdefault("assignments", [])
    out.setdefault("acknowledgements", [])
    return out


def routes(sandbox: Sandbox) -> list[Route]:
    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.strip() == f"Token token={sandbox.tokens.pagerduty}"

    api = backend(
        sandbox, "pagerduty", authorized=authorized,
        unauthorized=lambda r: pd_error(401, 2006, "Authentication failed",
                                        ["Authentication failed: the token is missing or invalid"]),
        no_world=lambda: pd_error(404, 2100, "Not Found", ["no scenario is active in the sandbox"]),
    )

    @api
    async def incidents(request: Request, world: World) -> Response:
        q = request.query_params
        statuses = set(q.getlist("statuses[]") or q.getlist("statuses"))
        if statuses - _STATUSES:
            return pd_error(400, 2001, "Invalid Input Provided", [f"statuses must be one of {sorted(_STATUSES)}"])
        services = set(q.getlist("service_ids[]") or q.getlist("service_ids"))
        urgencies = set(q.getlist("urgencies[]") or q.getlist("urgencies"))
        keys = q.get("incident_key")
        try:
            since = _parse_time(q["since"], "since") if q.get("since") else None
            until = _parse_time(q["until"], "until") if q.get("until") else None
        except ValueError as exc:
            return pd_error(400, 2001, "Invalid Input Provided", [str(exc)])
        out = []
        for inc in world.pd_incidents:
            created = _parse_time(inc["created_at"], "created_at") if inc.get("created_at") else None
            if statuses and inc.get("status") not in statuses:
                continue
            if services and (inc.get("service") or {}).get("id") not in services:
                continue
            if urgencies and inc.get("urgency") not in urgencies:
                continue
            if keys and inc.get("incident_key") != keys:
                continue
            if since and created and created < since:
                continue
            if until and created and created >= until:
                continue
            out.append(_incident(inc))
        out.sort(key=lambda i: i.get("created_at", ""), reverse=q.get("sort_by", "").endswith(":desc"))
        body, bad = _pager(request, out, "incidents")
        if bad:
            return pd_error(400, 2001, "Invalid Input Provided", [bad])
        return json_response(body)

    @api
    async def incident(request: Request, world: World) -> Response:
        iid = request.path_params["id"]
        found = next((i for i in world.pd_incidents if i.get("id") == iid), None)
        if found is None:
            return pd_error(404, 2100, "Not Found", [f"Incident {iid} not found"])
        return json_response({"incident": _incident(found)})

    @api
    async def services(request: Request, world: World) -> Response:
        query = (request.query_params.get("query") or "").lower()
        out = [dict(s) for s in world.pd_services if query in str(s.get("name", "")).lower()]
        out.sort(key=lambda s: str(s.get("name", "")))
        body, bad = _pager(request, out, "services")
        if bad:
            return pd_error(400, 2001, "Invalid Input Provided", [bad])
        return json_response(body)

    @api
    async def service(request: Request, world: World) -> Response:
        sid = request.path_params["id"]
        found = next((s for s in world.pd_services if s.get("id") == sid), None)
        if found is None:
            return pd_error(404, 2100, "Not Found", [f"Service {sid} not found"])
        return json_response({"service": found})

    @api
    async def current_user(request: Request, world: World) -> Response:
        return json_response({"user": dict(_CURRENT_USER)})

    return [
        Route("/users/me", current_user),
        Route("/incidents", incidents),
        Route("/incidents/{id}", incident),
        Route("/services", services),
        Route("/services/{id}", service),
    ]
