"""Bearer authentication for A2A calls: a pure ASGI middleware; the card, JWKS and health stay public.

Tokens are per role: a server accepts its own role's tokens (several while one rotates: the new
and the old, until the old is dropped). Given a map principal -> tokens, the token also names the
caller: `scope["state"]["principal"]` (Starlette's `request.state.principal`) says who it is, and
`scope["user"]` holds it as a Starlette user, which a2a-sdk hands the executor as
`RequestContext.call_context.user.user_name` (the name an answer is addressed to).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence

from starlette.authentication import AuthCredentials, SimpleUser
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/.well-known/agent-card.json", "/.well-known/jwks.json", "/healthz"})
"""The paths every agent serves without a token (agents.kit.published.public_paths adds its request schema)."""
CALLER = "caller"
"""The principal of a token given without a name."""
OWN_AGENTS = "driftwise:own-agents"
"""The principal of a specialist's role token (`specialists.<name>.token`): held by Driftwise's own agents
(the drift agent, a specialist consulting another), which say in the request which of them asks. A peer id
cannot contain a colon, so no peer can be named this."""


class BearerAuth:
    def __init__(
        self,
        app: ASGIApp,
        tokens: Sequence[str] | Mapping[str, Sequence[str]],
        public: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        named = tokens if isinstance(tokens, Mapping) else {CALLER: tokens}
        self._tokens = [(who, t.encode()) for who, ring in named.items() for t in ring if t]
        self._public = public

    def principal(self, scope: Scope) -> str | None:
        """Whose token the request carries; None when it carries none of the accepted ones."""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return None
                found = None
                for who, accepted in self._tokens:  # compare with every token: no early exit to time
                    if hmac.compare_digest(token.strip(), accepted):
                        found = who
                return found
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        who = self.principal(scope)
        if who is not None:
            scope.setdefault("state", {})["principal"] = who
            scope["user"], scope["auth"] = SimpleUser(who), AuthCredentials(["authenticated"])
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized", "detail": "send Authorization: Bearer <token for this agent>"})
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="driftwise"')],
        })
        await send({"type": "http.response.body", "body": body.encode()})
