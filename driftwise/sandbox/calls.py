"""The calls each backend answered (method, path, status), bounded: so a test can show which endpoints a real
client used and that none was missing. Read and cleared through /sandbox/calls."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_CALLS = 5000


@dataclass(frozen=True)
class Call:
    backend: str
    method: str
    path: str
    query: str
    status: int


class CallLog:
    def __init__(self) -> None:
        self.items: deque[Call] = deque(maxlen=MAX_CALLS)

    def as_json(self, backend: str | None = None) -> list[dict[str, object]]:
        return [asdict(c) for c in self.items if backend is None or c.backend == backend]


class CallLogMiddleware:
    """Records the status each request to one backend was answered with (sandbox-only paths excluded)."""

    def __init__(self, app: ASGIApp, *, log: CallLog, backend: str) -> None:
        self._app = app
        self._log = log
        self._backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
            await self._app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._log.items.append(Call(self._backend, scope["method"], scope["path"],
                                            scope.get("query_string", b"").decode(errors="replace"),
                                            message["status"]))
            await send(message)

        await self._app(scope, receive, recording)
