"""Bearer-token protection of the streamable HTTP transport, through the SDK's resource-server support.

The SDK's RequireAuthMiddleware answers 401 when no token or an unknown one comes; our verifier
accepts exactly the tokens configured for this server (compared in constant time): one, or the
new and the old while the token rotates.
"""

from __future__ import annotations

import hmac

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings


class StaticTokenVerifier:
    """Accepts this server's bearer tokens (settings mcp.<name>.token); implements the SDK's TokenVerifier."""

    def __init__(self, tokens: list[str], client_id: str = "driftwise") -> None:
        if not tokens or not all(tokens):
            raise ValueError("an empty bearer token would accept anyone; configure a token or disable auth")
        self._tokens = [t.encode() for t in tokens]
        self._client_id = client_id

    async def verify_token(self, token: str) -> AccessToken | None:
        given = token.encode()
        if any([hmac.compare_digest(given, t) for t in self._tokens]):  # every one compared: no early exit
            return AccessToken(token=token, client_id=self._client_id, scopes=[])
        return None


def auth_settings(public_url: str) -> AuthSettings:
    """Resource-server settings: the token is checked by our verifier, not bound to an issuer's audience."""
    return AuthSettings(issuer_url=public_url, resource_server_url=public_url, validate_token_resource=False)
