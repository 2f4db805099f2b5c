"""A Slack-style incoming-webhook receiver: a real HTTP server on loopback (uvicorn, in the test's own loop).

It answers each POST with the next status of its script (then 200, Slack's `ok`), or, with `hang`, never
answers until closed; it keeps every body it was sent. The socket is bound before the server starts, so a
client can connect at once (the connection waits in the backlog): no waiting for the server to be up.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.support.agents import dead_port

SECRET_PATH = "/services/T0DRIFT/B0WISE/s3cr3t-webhook-token"
"""The path of the webhook URL: as in Slack's, the secret part (tests check no log line carries it)."""


class Receiver:
    def __init__(self, statuses: list[int] | None = None, *, hang: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.hang = hang
        self.headers = headers or {}
        self.bodies: list[Any] = []
        self.content_types: list[str] = []
        self.arrived = asyncio.Event()
        """Set on each request's arrival (cleared by whoever waits on it)."""
        self._never = asyncio.Event()
        self.url = ""

    async def received(self, n: int, timeout_s: float) -> list[Any]:
        """The bodies once there are at least `n`; fails after `timeout_s` naming how many came."""
        try:
            async with asyncio.timeout(timeout_s):
                while len(self.bodies) < n:
                    self.arrived.clear()  # no await between the check and the clear: no arrival is missed
                    await self.arrived.wait()
        except TimeoutError:
            raise AssertionError(f"the receiver got {len(self.bodies)} message(s) in {timeout_s:g}s, not {n}") from None
        return self.bodies

    async def _hook(self, request: Request) -> Response:
        self.bodies.append(json.loads(await request.body()))
        self.content_types.append(request.headers.get("content-type", ""))
        self.arrived.set()
        if self.hang:
            await self._never.wait()  # only the client's timeout (or the server's shutdown) ends this request
        status = self.statuses.pop(0) if self.statuses else 200
        return PlainTextResponse("ok" if status == 200 else "no_service", status_code=status, headers=self.headers)

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[Receiver]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}{SECRET_PATH}"
        app = Starlette(routes=[Route(SECRET_PATH, self._hook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                               timeout_graceful_shutdown=1))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            yield self
        finally:
            server.should_exit = True
            self._never.set()
            async with asyncio.timeout(10):
                await task
            sock.close()


def dead_url() -> str:
    """A loopback webhook URL nothing listens on: a receiver that is down."""
    return f"http://127.0.0.1:{dead_port()}{SECRET_PATH}"
