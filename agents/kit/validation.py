"""An A2A message in, a validated protocol model out (an AnalysisRequest, for a specialist) — or an error that
says what is wrong."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from a2a.types import Message
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ValidationError

from agents.kit.card import JSON
from agents.kit.errors import InvalidAnalysisRequest, InvalidMessage
from protocol.models import AnalysisRequest

_MAX_ERRORS = 3
M = TypeVar("M", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:_MAX_ERRORS]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - _MAX_ERRORS} more)" if exc.error_count() > _MAX_ERRORS else ""
    return "; ".join(parts) + more


def _payload(message: Message, name: str, error: type[InvalidMessage]) -> Any:
    texts = [p for p in message.parts if p.HasField("text")]
    json_texts = [p for p in texts if p.media_type == JSON] or [p for p in texts if not p.media_type]
    if json_texts:
        try:
            return json.loads(json_texts[0].text)
        except json.JSONDecodeError as exc:
            raise error(f"the application/json text part is not JSON ({exc.msg} at char {exc.pos}); "
                        f"send {name} JSON") from None
    data = [p for p in message.parts if p.HasField("data")]
    if data:
        return MessageToDict(data[0].data)
    raise error(f"the message holds no application/json text part; send {name} JSON as a text part "
                "with media type application/json")


def parse_model(message: Message | None, model: type[M], error: type[InvalidMessage] = InvalidMessage) -> M:
    """The `model` a message carries as JSON (a text part, else a data part), or `error` naming what is wrong."""
    name = model.__name__
    if message is None:
        raise error(f"no message: send an {name} as an application/json text part")
    payload = _payload(message, name, error)
    if not isinstance(payload, dict):
        raise error(f"{name} must be a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise error(f"not a valid {name}: {_describe(exc)}") from None


def parse_request(message: Message | None) -> AnalysisRequest:
    return parse_model(message, AnalysisRequest, InvalidAnalysisRequest)
