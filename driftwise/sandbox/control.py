"""Sandbox-only endpoints under /sandbox/ on the Argo CD port: clock, scenarios, clones, writes, health."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from driftwise.sandbox.errors import SandboxError
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
            world = await sandbox.activate(str(body.get("id", "")), clones=count)
        except (SandboxError, ValueError, TypeError) as exc:
            return _error(404 if "no scenario" in str(exc) else 400, str(exc))
        return json_response({"id": sandbox.active, "now": rfc3339(world.now),
                              "applications": sandbox.world_applications(world)})

    async def writes(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.writes.clear()
        return json_response({"writes": [w.as_json() for w in sandbox.writes]})

    return [
        Route("/sandbox/healthz", healthz),
        Route("/sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/sandbox/scenarios", scenarios),
        Route("/sandbox/scenarios/load", load, methods=["POST"]),
        Route("/sandbox/scenarios/activate", activate, methods=["POST"]),
        Route("/sandbox/clones", clones, methods=["POST"]),
        Route("/sandbox/writes", writes, methods=["GET", "DELETE"]),
    ]
