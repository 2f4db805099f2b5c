"""A loopback stand-in for an OPA server: OPA's REST data API over the same Rego files, evaluated by regopy.

`POST /v1/data/{path}` with `{"input": ...}` -> 200 `{"result": ..., "decision_id": ...}`, or 200
`{"decision_id": ...}` when the path is undefined (as OPA answers). `/v1/data/test/slow` never
answers in time and `/v1/data/test/broken` answers 500, for the failure tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.drift.guardrail import PolicyError, PolicyLoadError, PolicyUndefined, RegoEngine


def create_app(policy_dir: Path) -> Starlette:
    engines: dict[str, RegoEngine | None] = {}

    async def data(request: Request) -> JSONResponse:
        path = request.path_params["path"].strip("/")
        decision_id = uuid.uuid4().hex
        if path == "test/slow":  # slower than any client timeout the tests use, but bounded
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), 3.0)
        if path == "test/broken":
            return JSONResponse({"code": "internal_error", "message": "boom"}, status_code=500)
        body = await request.json()
        if path not in engines:
            try:
                engines[path] = RegoEngine(policy_dir, path)
            except PolicyLoadError:
                engines[path] = None
        engine = engines[path]
        if engine is None:
            return JSONResponse({"decision_id": decision_id})
        try:
            answer = await engine.evaluate(body.get("input", {}))
        except PolicyUndefined:
            return JSONResponse({"decision_id": decision_id})
        except PolicyError as exc:
            return JSONResponse({"code": "internal_error", "message": str(exc)}, status_code=500)
        return JSONResponse({"result": answer["result"], "decision_id": decision_id})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for engine in engines.values():
            if engine is not None:
                engine.close()

    return Starlette(routes=[Route("/v1/data/{path:path}", data, methods=["POST"])], lifespan=lifespan)
