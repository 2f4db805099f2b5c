"""HTTP+JSON requests with a body must be JSON: anything else is answered 415 (RFC 9110 §15.5.16).

The A2A HTTP+JSON binding takes `application/json` (or A2A's own `application/a2a+json`); a2a-sdk
would parse any body and answer a non-JSON one 400, where RFC 9110 and the A2A spec say 415. The
error body has the binding's own shape (google.rpc.Status: `{"error": {"code", "status", "message"}}`)
and names the fix.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

ACCEPTED = frozenset({"application/json", "application/a2a+json"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def media_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The request's media type without parameters, lower-cased; None when it sends no Content-Type."""
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class RestMediaType:
    """415 for an HTTP+JSON request (under `prefix`) whose body is not declared JSON; a bodiless POST
    (`tasks/{id}:cancel`) passes."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self._prefix = prefix.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        found = media_type(headers)
        if found in ACCEPTED or (found is None and not _has_body(headers)):
            await self.app(scope, receive, send)
            return
        sent = f"Content-Type {found!r}" if found else "no Content-Type"
        body = json.dumps({"error": {
            "code": 415, "status": "INVALID_ARGUMENT",
            "message": f"the request has {sent}; send its JSON body with Content-Type: application/json "
                       "(or application/a2a+json)",
        }}).encode()
        await send({"type": "http.response.start", "status": 415, "headers": [
            (b"content-type", b"application/json"), (b"accept-post", b"application/json, application/a2a+json"),
        ]})
        await send({"type": "http.response.body", "body": body})
