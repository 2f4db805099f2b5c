"""Sandbox-only endpoints under /sandbox/ on the Argo CD port: clock, scenarios, clones, writes, live, faults,
health.

No auth. The contract:
- GET  /sandbox/clock -> {"now"}; POST {"now": RFC3339} or {"advance_s": float} -> {"now"}
- GET  /sandbox/scenarios -> {"active", "scenarios": [{"id", "title", "now", "applications"}]}
- POST /sandbox/scenarios/load {"path"} -> the listing
- POST /sandbox/scenarios/activate {"id"} -> {"id", "now", "applications": [{"app", "namespace", "notification"}]}
- POST /sandbox/clones {"id", "count", "also"?: [ids]} -> the same, the scenario plus `count` clones (and each
  scenario of `also` with as many, in the same world, on the first one's clock)
- POST /sandbox/people/... act as the SRE (sync as a user, commit, edit back, delete): driftwise.sandbox.people
- GET  /sandbox/writes -> {"writes": [...]}; DELETE clears (the writes made through the Argo CD API)
- POST /sandbox/live {"application", "kind", "name", "namespace"?, "group"?, "patch": JSON merge patch}
  -> {"application", "group", "kind", "namespace", "name", "resourceVersion", "status", "sync", "live"}:
  edits a managed resource's LIVE object as someone changing the cluster would (the Kubernetes API and
  Argo CD's managed-resources diff both show it, the application's sync status is recomputed). A test
  and demo control, not a Driftwise write: never in /sandbox/writes. 404 names the missing application
  or resource, 400 a bad body or patch.
- GET  /sandbox/faults -> {"faults": [fault]}; DELETE releases every held request and clears them all
- POST /sandbox/faults {"backend"?: argocd|kubernetes|prometheus|grafana|pagerduty (default argocd),
  "method", "path": a route pattern like /api/v1/applications/{name}/sync or a concrete path,
  "action": "hold" | "delay" | "fail", "seconds"?, "status"?: 5xx (fail, default 503), "skip"?: let N
  matching requests through first, "times"?: apply to at most N} -> 201 the fault:
  {"id", ...the spec, "matched", "applied", "held" (requests held now), "active" (applied, not finished),
  "expired" (holds that reached their maximum), "released"}.
  hold: keep each matching request until released, at most `seconds` (default and cap
  driftwise.sandbox.faults.MAX_HOLD_S), then it runs as the backend would have run it — even if its
  client has gone. delay: run it after `seconds` (at most MAX_DELAY_S). fail: answer `status` without
  running it; on Argo CD a failed write is recorded in /sandbox/writes as refused. 400 names a bad field.
- GET  /sandbox/faults/{id}; POST /sandbox/faults/{id}/release -> the fault (held requests go on, the
  fault applies no more); DELETE /sandbox/faults/{id} releases it and forgets it. 404 for an unknown id.
- GET  /sandbox/calls[?backend=kubernetes] -> {"calls": [{"backend", "method", "path", "query", "status"}]}: the
  requests the backends answered, oldest first (at most driftwise.sandbox.calls.MAX_CALLS); DELETE clears them
- GET  /sandbox/healthz -> {"ok": true, "active"}
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox.errors import SandboxError, UnknownResource
from driftwise.sandbox.faults import FaultSpec
from driftwise.sandbox.http import json_response
from driftwise.sandbox.state import Sandbox, rfc3339

MAX_CLONES = 500


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise SandboxError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SandboxError("request body must be a JSON object")
    return body


def routes(sandbox: Sandbox) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"ok": True, "active": sandbox.active})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await _body(request)
                if "now" in body:
                    sandbox.clock.set(datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00")))
                elif "advance_s" in body:
                    sandbox.clock.advance(float(body["advance_s"]))
                else:
                    return _error(400, 'send {"now": RFC3339} or {"advance_s": seconds}')
            except (SandboxError, ValueError, TypeError) as exc:
                return _error(400, f"clock: {exc}")
        return json_response({"now": rfc3339(sandbox.clock.now())})

    async def scenarios(request: Request) -> Response:
        return json_response(sandbox.listing())

    async def load(request: Request) -> Response:
        try:
            body = await _body(request)
            if not isinstance(body.get("path"), str):
                return _error(400, 'send {"path": "a scenario file or folder"}')
            sandbox.load([Path(body["path"])])
        except SandboxError as exc:
            return _error(400, str(exc))
        return json_response(sandbox.listing())

    async def activate(request: Request) -> Response:
        try:
            body = await _body(request)
            world = await sandbox.activate(str(body.get("id", "")))
        except SandboxError as exc:
            return _error(404 if "no scenario" in str(exc) else 400, str(exc))
        return json_response({"id": sandbox.active, "now": rfc3339(world.now),
                              "applications": sandbox.world_applications(world)})

    async def clones(request: Request) -> Response:
        try:
            body = await _body(request)
            count = int(body.get("count", 0))
            if not 0 <= count <= MAX_CLONES:
                return _error(400, f"count must be between 0 and {MAX_CLONES}")
            also = body.get("also") or []
            if not isinstance(also, list) or not all(isinstance(i, str) for i in also):
                return _error(400, 'clones: "also" must be a list of scenario ids to add to the same world')
            world = await sandbox.activate(str(body.get("id", "")), clones=count, also=also)
        except (SandboxError, ValueError, TypeError) as exc:
            return _error(404 if "no scenario" in str(exc) else 400, str(exc))
        return json_response({"id": sandbox.active, "now": rfc3339(world.now),
                              "applications": sandbox.world_applications(world)})

    async def writes(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.writes.clear()
        return json_response({"writes": [w.as_json() for w in sandbox.writes]})

    async def live(request: Request) -> Response:
        try:
            body = await _body(request)
        except SandboxError as exc:
            return _error(400, f"live: {exc}")
        for key in ("application", "kind", "name"):
            if not isinstance(body.get(key), str) or not body[key]:
                return _error(400, f'live: field "{key}" must be a non-empty string; send {{"application", '
                                   '"kind", "name", "namespace"?, "patch": {...}}')
        for key in ("namespace", "group"):
            if body.get(key) is not None and not isinstance(body[key], str):
                return _error(400, f'live: field "{key}" must be a string when given')
        patch = body.get("patch")
        if not isinstance(patch, dict):
            return _error(400, 'live: field "patch" must be a JSON object (a JSON merge patch, RFC 7386), '
                               'e.g. {"spec": {"replicas": 20}}')
        world = sandbox.world
        if world is None:
            return _error(404, "live: no scenario is active in the sandbox (activate one first)")
        try:
            app, resource = world.managed(body["application"], body["kind"], body["name"], body.get("namespace"),
                                          body.get("group"))
            world.patch_live(app, resource, patch)
        except UnknownResource as exc:
            return _error(404, f"live: {exc}")
        except SandboxError as exc:
            return _error(400, f"live: {exc}")
        return json_response({
            "application": app.name, "group": resource.group, "kind": resource.kind,
            "namespace": resource.namespace, "name": resource.name,
            "resourceVersion": resource.live["metadata"]["resourceVersion"],
            "status": "OutOfSync" if app.resource_differs(resource) else "Synced",
            "sync": ((app.application.get("status") or {}).get("sync") or {}).get("status"),
            "live": world.masked_object(resource.live),
        })

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.calls.items.clear()
        return json_response({"calls": sandbox.calls.as_json(request.query_params.get("backend"))})

    async def faults(request: Request) -> Response:
        registry = sandbox.faults
        if request.method == "DELETE":
            registry.clear()
        elif request.method == "POST":
            try:
                spec = FaultSpec.model_validate(await _body(request))
                fault = registry.add(spec)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "body"
                return _error(400, f"faults: field {where!r}: {err['msg']}; send {{\"method\", \"path\", "
                                   '"action": hold|delay|fail, ...} (GET /sandbox/faults lists the faults in force)')
            except SandboxError as exc:
                return _error(400, f"faults: {exc}")
            return json_response(fault.as_json(), 201)
        return json_response({"faults": [f.as_json() for f in registry.items.values()]})

    async def fault(request: Request) -> Response:
        registry = sandbox.faults
        try:
            fault_id = int(request.path_params["id"])
            found = registry.remove(fault_id) if request.method == "DELETE" else registry.get(fault_id)
        except ValueError:
            return _error(404, f"faults: no fault {request.path_params['id']!r}")
        except SandboxError as exc:
            return _error(404, f"faults: {exc}")
        return json_response(found.as_json())

    async def release(request: Request) -> Response:
        try:
            found = sandbox.faults.release(int(request.path_params["id"]))
        except ValueError:
            return _error(404, f"faults: no fault {request.path_params['id']!r}")
        except SandboxError as exc:
            return _error(404, f"faults: {exc}")
        return json_response(found.as_json())

    return [
        Route("/sandbox/healthz", healthz),
        Route("/sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/faults/{id}", fault, methods=["GET", "DELETE"]),
        Route("/sandbox/faults/{id}/release", release, methods=["POST"]),
        Route("/sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/sandbox/scenarios", scenarios),
        Route("/sandbox/scenarios/load", load, methods=["POST"]),
        Route("/sandbox/scenarios/activate", activate, methods=["POST"]),
        Route("/sandbox/clones", clones, methods=["POST"]),
        Route("/sandbox/writes", writes, methods=["GET", "DELETE"]),
        Route("/sandbox/calls", calls, methods=["GET", "DELETE"]),
        Route("/sandbox/live", live, methods=["POST"]),
    ]
