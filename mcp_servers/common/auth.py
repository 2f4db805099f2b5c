"""Bearer-token protection of the streamable HTTP transport, through the SDK's resource-server support.

The SDK's RequireAuthMiddleware answers 401 when no token or an unknown one comes; our verifier
accepts exactly the token configured for this server (compared in constant time).
"""

from __future__ import annotations

import hmac

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings


class StaticTokenVerifier:
    """Accepts one shared bearer token (settings mcp.<name>.token); implements the SDK's TokenVerifier."""

    def __init__(self, token: str, client_id: str = "driftwise") -> None:
        if not token:
            raise ValueError("an empty bearer token would accept anyone; configure a token or disable auth")
        self._token = token.encode()
        self._client_id = client_id

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id=self._client_id, scopes=[])
        return None


def auth_settings(public_url: str) -> AuthSettings:
    """Resource-server settings: the token is checked by our verifier, not bound to an issuer's audience."""
    return AuthSettings(issuer_url=public_url, resource_server_url=public_url, validate_token_resource=False)
