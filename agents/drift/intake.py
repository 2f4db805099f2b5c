"""Intake: authenticate an Argo CD notification, validate it, persist it, answer 202 with its event id.

Nothing is stored unless the request is authenticated, JSON, small and flat enough, and valid; every
refusal is a 4xx whose message names the header or field at fault. A notification of an application and
revision whose decision is still open joins it: the answer carries that decision's event id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from agents.drift.config import DriftConfig
from agents.drift.errors import StoreError
from agents.drift.store import EventStore
from protocol.models import ApiError, ArgoNotification, Decision, DriftEvent, WebhookAccepted
from protocol.tokens import accepted

log = logging.getLogger(__name__)


MAX_JSON_DEPTH = 8
"""Deepest nesting of arrays/objects a request body may have; every body this API takes is flat (depth 1-2).
Checked before parsing, so that a small body of thousands of brackets is a 400, not a RecursionError."""
_SPECIAL = re.compile(rb'["\\\[\]{}]')


class BadRequest(Exception):
    """A request refused before it reaches a model: `status` and a message saying what to send instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodyTooLarge(BadRequest):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than drift.max_body_bytes ({limit} bytes)")


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
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_content_type(header: str | None) -> bool:
    media, _, params = (header or "").partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        return False
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";")
                    if p.strip().lower().startswith("charset=")), "utf-8")
    return charset in ("utf-8", "utf8")


def _too_deep(raw: bytes, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit`; one linear pass over the structural bytes, strings
    (and the escapes in them) skipped, so that no input can make it slow."""
    depth, in_string, escaped_at = 0, False, -1
    for m in _SPECIAL.finditer(raw):
        at = m.start()
        if at == escaped_at:
            continue
        char = raw[at]
        if char == 0x5C:  # backslash: inside a string, the next byte is escaped
            if in_string:
                escaped_at = at + 1
        elif char == 0x22:
            in_string = not in_string
        elif not in_string:
            depth += 1 if char in (0x5B, 0x7B) else -1
            if depth > limit:
                return True
    return False


async def read_json_object(request: Request, limit: int, what: str, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body, its type, size and nesting checked before it is parsed.

    Raises BadRequest (415, 413, 400) naming what is wrong; an empty optional body is `{}`."""
    raw = await read_limited(request, limit)
    if not raw.strip() and not required:
        return {}
    if not _json_content_type(request.headers.get("content-type")):
        raise BadRequest(415, f"Content-Type must be application/json (UTF-8): send {what} as JSON")
    if _too_deep(raw, MAX_JSON_DEPTH):
        raise BadRequest(400, f"body nests deeper than {MAX_JSON_DEPTH} levels: send {what}, a flat JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest(400, f"body is not JSON: send {what} as a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest(400, f"body must be a JSON object ({what})")
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # "\ud800" escapes decode to no character at all: nothing can store or show it
        raise BadRequest(400, "body contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): "
                              "send text as valid Unicode") from None
    return body


def error(status: int, message: str, **extra: object) -> JSONResponse:
    body = ApiError.model_validate({"error": message, **extra})
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)


def printable(text: str, limit: int = 100) -> str:
    """Text from a request, safe to put in an answer: non-printable and non-ASCII characters escaped."""
    shown = ascii(text)[1:-1]
    return shown if len(shown) <= limit else shown[:limit] + "..."


def field_error(exc: ValidationError) -> JSONResponse:
    """422 naming the first field at fault (by its wire name) and what it must be."""
    err = exc.errors()[0]
    field = printable(".".join(str(p) for p in err["loc"]) or "body")
    return error(422, f"field `{field}`: {printable(err['msg'], 400)}", field=field)


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
            body = await read_json_object(request, config.max_body_bytes, "the ArgoNotification")
        except BadRequest as exc:
            return error(exc.status, str(exc))
        try:
            notification = ArgoNotification.model_validate(body)
        except ValidationError as exc:
            return field_error(exc)
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
        answer = WebhookAccepted(event_id=decision.event.event_id, state=decision.state, duplicate=duplicate)
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)

    return webhook
