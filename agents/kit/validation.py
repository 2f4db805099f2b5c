"""An A2A message in, a validated protocol AnalysisRequest out — or an error that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

from a2a.types import Message
from google.protobuf.json_format import MessageToDict
from pydantic import ValidationError

from agents.kit.card import JSON
from agents.kit.errors import InvalidAnalysisRequest
from protocol.models import AnalysisRequest

_MAX_ERRORS = 3


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:_MAX_ERRORS]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - _MAX_ERRORS} more)" if exc.error_count() > _MAX_ERRORS else ""
    return "; ".join(parts) + more


def _payload(message: Message) -> Any:
    texts = [p for p in message.parts if p.HasField("text")]
    json_texts = [p for p in texts if p.media_type == JSON] or [p for p in texts if not p.media_type]
    if json_texts:
        try:
            return json.loads(json_texts[0].text)
        except json.JSONDecodeError as exc:
            raise InvalidAnalysisRequest(
                f"the application/json text part is not JSON ({exc.msg} at char {exc.pos}); "
                "send AnalysisRequest JSON"
            ) from None
    data = [p for p in message.parts if p.HasField("data")]
    if data:
        return MessageToDict(data[0].data)
    raise InvalidAnalysisRequest(
        "the message holds no application/json text part; send AnalysisRequest JSON as a text part "
        "with media type application/json"
    )


def parse_request(message: Message | None) -> AnalysisRequest:
    if message is None:
        raise InvalidAnalysisRequest("no message: send an AnalysisRequest as an application/json text part")
    payload = _payload(message)
    if not isinstance(payload, dict):
        raise InvalidAnalysisRequest(f"AnalysisRequest must be a JSON object, got {type(payload).__name__}")
    try:
        return AnalysisRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidAnalysisRequest(f"not a valid AnalysisRequest: {_describe(exc)}") from None
