"""Who is signed in to the console, and the CSRF token of their session.

The session lives in a signed cookie (Starlette's SessionMiddleware, itsdangerous): HttpOnly,
SameSite=Strict, path /console, Secure when the agent's public URL is https. It holds the approver's
name and a CSRF token, never the approvals token. The signing key is `console.session_key` (replicas share
it; else one drawn at start-up, and a restart signs everyone out) bound to the approvals tokens, so a
rotated `drift.approvals_token` signs everyone out too. Behind an authenticating proxy the session holds
only the CSRF token: who is signed in is the proxy's word on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from starlette.requests import Request

from protocol.models import PERSON_TEXT

SESSION_COOKIE = "driftwise_console"
SESSION_MAX_AGE_S = 8 * 3600
"""One on-call shift; after it the approver signs in again."""
CSRF_FIELD = "csrf_token"

ApproverName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                                pattern=PERSON_TEXT)]


class Login(BaseModel):
    """The login form: the approvals token and the name the audit records as the approver."""

    model_config = ConfigDict(extra="ignore")
    token: SecretStr = Field(min_length=1)
    approver: ApproverName


def signing_key(shared: str | None, approvals_tokens: list[str]) -> str:
    """The key sessions are signed with: the shared key (or one drawn now) bound to the approvals tokens."""
    base = shared if shared is not None else secrets.token_urlsafe(32)
    return hmac.new(base.encode(), "\n".join(approvals_tokens).encode(), hashlib.sha256).hexdigest()


def token_ok(given: str, accepted: list[str]) -> bool:
    """`given` is one of the accepted approvals tokens, comparing every one (no early exit)."""
    return any([hmac.compare_digest(given.encode(), token.encode()) for token in accepted])


def csrf_token(request: Request) -> str:
    """This session's CSRF token, drawn on first use (the login form has one before anyone signs in)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    return isinstance(sent, str) and isinstance(expected, str) and hmac.compare_digest(sent.encode(),
                                                                                       expected.encode())


def approver(request: Request) -> str | None:
    """The signed-in approver (the cookie's signature and age were checked by SessionMiddleware)."""
    name = request.session.get("approver")
    return name if isinstance(name, str) else None


def sign_in(request: Request, name: str) -> None:
    request.session.clear()  # a new session: a CSRF token drawn before the login is not reused
    request.session.update({"approver": name, "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    request.session.clear()
