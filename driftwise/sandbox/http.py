"""Pieces every simulated backend shares: the world lookup, `down` handling and bearer checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from driftwise.sandbox.state import Sandbox
from driftwise.sandbox.world import World

Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def backend(
    sandbox: Sandbox,
    name: str,
    *,
    authorized: Callable[[Request], bool] | None,
    unauthorized: Callable[[Request], Response],
    no_world: Callable[[], Response],
) -> Callable[[Callable[[Request, World], Awaitable[Response]]], Handler]:
    """Wrap a handler: 503 when the scenario marks this backend down, auth, then the active world."""

    def wrap(fn: Callable[[Request, World], Awaitable[Response]]) -> Handler:
        async def handler(request: Request) -> Response:
            world = sandbox.world
            if world is not None and name in world.down:
                return Response(f"{name} is unavailable (scenario marks it down)\n", status_code=503,
                                media_type="text/plain")
            if authorized is not None and not authorized(request):
                return unauthorized(request)
            if world is None:
                return no_world()
            return await fn(request, world)

        handler.__name__ = fn.__name__
        return handler

    return wrap
