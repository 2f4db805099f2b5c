"""Bearer authentication for A2A calls: a pure ASGI middleware; the card, JWKS and health stay public."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/.well-known/agent-card.json", "/.well-known/jwks.json", "/healthz"})


class BearerAuth:
    def __init__(self, app: ASGIApp, tokens: list[str], public: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self._tokens = [t.encode() for t in tokens if t]
        self._public = public

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return any(hmac.compare_digest(token.strip(), t) for t in self._tokens)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized", "detail": "send Authorization: Bearer <token for this agent>"})
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="driftwise"')],
        })
        await send({"type": "http.response.body", "body": body.encode()})
