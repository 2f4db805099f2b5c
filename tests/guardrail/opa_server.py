"""A small OPA server for the OPA REST tests: OPA's REST data API over the same Rego files, evaluated by
OPA's own Go engine (tests/guardrail/opa_go.py), not by regopy.

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
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.drift.guardrail import PolicyEvaluationError, PolicyUndefined
from tests.guardrail.opa_go import GoRegoEngine


def create_app(policy_dir: Path) -> Starlette:
    engine = GoRegoEngine(policy_dir)

    async def data(request: Request) -> JSONResponse:
        path = request.path_params["path"].strip("/")
        decision_id = uuid.uuid4().hex
        if path == "test/slow":  # slower than any client timeout the tests use, but bounded
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), 3.0)
        if path == "test/broken":
            return JSONResponse({"code": "internal_error", "message": "boom"}, status_code=500)
        body: dict[str, Any] = await request.json()
        try:
            result = await asyncio.to_thread(engine.document, path.replace("/", "."), body.get("input"))
        except PolicyUndefined:
            return JSONResponse({"decision_id": decision_id})
        except PolicyEvaluationError as exc:
            return JSONResponse({"code": "internal_error", "message": str(exc)}, status_code=500)
        return JSONResponse({"result": result, "decision_id": decision_id})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engine.close()

    return Starlette(routes=[Route("/v1/data/{path:path}", data, methods=["POST"])], lifespan=lifespan)
