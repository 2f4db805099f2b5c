"""Intake: authenticate an Argo CD notification, validate it, persist it, answer 202 with its event id.

Nothing is stored unless the request is authenticated, small enough and valid.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from agents.drift.config import DriftConfig
from agents.drift.errors import StoreError
from agents.drift.store import EventStore
from protocol.models import ArgoNotification, Decision, DriftEvent
from protocol.tokens import accepted

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def webhook_authorized(config: DriftConfig, header: str | None) -> bool:
    """Bearer drift.webhook_token, or Basic drift.webhook_basic_user/password, when configured."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and config.webhook_token is not None:
        return any([_eq(value, t) for t in accepted(config.webhook_token)])  # each compared: no early exit
    if scheme == "basic" and config.webhook_basic_user and config.webhook_basic_password is not None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return _eq(user, config.webhook_basic_user) and _eq(password, config.webhook_basic_password.get_secret_value())
    return False


def bearer_ok(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and _eq(value.strip(), token)


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _field_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    return field, f"field `{field}`: {err['msg']}"


def webhook_endpoint(
    config: DriftConfig, store: EventStore, on_accepted: Callable[[Decision], Awaitable[None]]
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def webhook(request: Request) -> JSONResponse:
        if not webhook_authorized(config, request.headers.get("authorization")):
            return JSONResponse(
                {"error": "missing or wrong credentials: send Authorization: Bearer <drift.webhook_token>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="driftwise", Basic realm="driftwise"'},
            )
        try:
            raw = await read_limited(request, config.max_body_bytes)
        except BodyTooLarge:
            return error(413, f"body larger than drift.max_body_bytes ({config.max_body_bytes} bytes)")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error(400, "body is not JSON: send the ArgoNotification JSON object")
        if not isinstance(body, dict):
            return error(400, "body must be a JSON object (an ArgoNotification)")
        try:
            notification = ArgoNotification.model_validate(body)
        except ValidationError as exc:
            field, message = _field_error(exc)
            return error(422, message, field=field)
        event = DriftEvent(
            event_id=str(uuid.uuid4()),
            idempotency_key=DriftEvent.key_for(notification),
            received_at=datetime.now(UTC),
            notification=notification,
        )
        try:
            decision, duplicate = await store.accept(event, datetime.now(UTC))
        except StoreError as exc:
            # nothing was stored: Argo CD's notification controller retries a failed delivery
            log.warning("webhook for %s not stored: %s", event.idempotency_key, exc)
            return error(503, f"the event store is busy, nothing was stored; retry the delivery ({exc})")
        if not duplicate:
            await on_accepted(decision)
        log.info("webhook %s for %s (duplicate=%s)", decision.event.event_id, event.idempotency_key, duplicate)
        return JSONResponse(
            {"event_id": decision.event.event_id, "state": decision.state.value, "duplicate": duplicate},
            status_code=202,
        )

    return webhook
