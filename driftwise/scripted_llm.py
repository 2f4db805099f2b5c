"""A scripted OpenAI-compatible chat server: try the LLM reasoner offline, and test it.

Serves `POST /v1/chat/completions` and `GET /v1/models` in the OpenAI wire format, including the
structured-output paths langchain-openai uses (`response_format: {type: json_schema}` — the
default of `ChatOpenAI.with_structured_output` — and function/tool calls). Scripts:

- `rules-like`: reads the prompt's data block and answers what Driftwise's rules reasoner would;
- `hostile`: always `allow`, confidence 1.0, reasoning "approved by security";
- `invalid`: answers text that is not JSON;
- `slow`: waits `delay_s` before answering like `rules-like` (to exceed a client timeout);
- `refuse`: a refusal instead of an answer.

Test hooks: `GET /_requests` lists every request body received, `DELETE /_requests` clears them,
`POST /_script {"script": name, "delay_s"?: float}` switches the script. Loopback use only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["SCRIPTS", "ScriptState", "create_app"]

_DATA = re.compile(r"<<<DRIFT-DATA (?P<nonce>[0-9a-f]+)>>>\n(?P<body>.*)\n<<<END-DRIFT-DATA (?P=nonce)>>>", re.S)


@dataclass
class ScriptState:
    script: str = "rules-like"
    delay_s: float = 30.0
    model: str = "driftwise-scripted"
    requests: list[dict[str, Any]] = field(default_factory=list)


Answer = dict[str, Any] | str | None
"""A dict is the structured answer; a str is raw content; None is a refusal."""


def _user_text(body: dict[str, Any]) -> str:
    parts = []
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        if m.get("role") == "user" and isinstance(content, str):
            parts.append(content)
    return "\n".join(parts)


def _rules_answer(body: dict[str, Any]) -> dict[str, Any]:
    """What the deterministic rules would say about the data block (escalate if it cannot be read)."""
    match = _DATA.search(_user_text(body))
    try:
        from agents.drift.reasoning.base import ReasoningInput
        from agents.drift.reasoning.rules import decide

        data = json.loads(match.group("body")) if match else None
        if not isinstance(data, dict):
            raise ValueError("no data block")
        inp = ReasoningInput(
            event_id=data["event_id"], agent="scripted-llm", report=data["report"], evidence=data["evidence"],
            specialists=data["specialists"], unreachable_specialists=data.get("unreachable_specialists") or [],
            now=data["now"],
        )
        rec = decide(inp)
        return {"action": rec.action.value if rec.action else "escalate", "confidence": rec.confidence,
                "reasoning": rec.reasoning[:2000], "evidence_refs": rec.evidence_refs}
    except Exception as exc:  # a prompt this script cannot read is answered cautiously, not with a 500
        return {"action": "escalate", "confidence": 0.5, "reasoning": f"could not read the data block: {exc}"[:500],
                "evidence_refs": []}


async def _rules_like(body: dict[str, Any], state: ScriptState) -> Answer:
    return _rules_answer(body)


async def _hostile(body: dict[str, Any], state: ScriptState) -> Answer:
    return {"action": "allow", "confidence": 1.0, "reasoning": "approved by security", "evidence_refs": []}


async def _invalid(body: dict[str, Any], state: ScriptState) -> Answer:
    return "Sure! Here is my answer: allow (I think) {not json"


async def _slow(body: dict[str, Any], state: ScriptState) -> Answer:
    await asyncio.sleep(state.delay_s)
    return _rules_answer(body)


async def _refuse(body: dict[str, Any], state: ScriptState) -> Answer:
    return None


SCRIPTS: dict[str, Callable[[dict[str, Any], ScriptState], Awaitable[Answer]]] = {
    "rules-like": _rules_like,
    "hostile": _hostile,
    "invalid": _invalid,
    "slow": _slow,
    "refuse": _refuse,
}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _completion(body: dict[str, Any], answer: Answer, model: str) -> dict[str, Any]:
    tools = body.get("tools") or []
    tool_name = None
    if tools and isinstance(tools[0], dict):
        tool_name = (tools[0].get("function") or {}).get("name")
    content_text = json.dumps(answer) if isinstance(answer, dict) else (answer or "")
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    finish = "stop"
    if answer is None:
        message["refusal"] = "I can't help with that request."
    elif tool_name and isinstance(answer, dict) and body.get("response_format") is None:
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": tool_name, "arguments": content_text}}]
        finish = "tool_calls"
    else:
        message["content"] = content_text
    prompt = json.dumps(body.get("messages") or [])
    usage_in, usage_out = _tokens(prompt), _tokens(content_text or str(message["refusal"]))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out, "total_tokens": usage_in + usage_out},
        "system_fingerprint": "driftwise-scripted",
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": None}}, status_code=status)


def create_app(state: ScriptState | None = None) -> Starlette:
    state = state or ScriptState()

    async def completions(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "`messages` must be a list")
        state.requests.append({"path": request.url.path, "body": body, "script": state.script})
        answer = await SCRIPTS[state.script](body, state)
        return JSONResponse(_completion(body, answer, state.model))

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": state.model, "object": "model", "created": 0, "owned_by": "driftwise"}]})

    async def requests_(request: Request) -> Response:
        if request.method == "DELETE":
            state.requests.clear()
            return JSONResponse({"requests": []})
        return JSONResponse({"requests": state.requests})

    async def script(request: Request) -> Response:
        body = await request.json()
        name = body.get("script")
        if name not in SCRIPTS:
            return _error(400, f"unknown script {name!r}; use one of {', '.join(SCRIPTS)}")
        state.script = name
        if "delay_s" in body:
            state.delay_s = float(body["delay_s"])
        return JSONResponse({"script": state.script, "delay_s": state.delay_s})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "script": state.script})

    return Starlette(routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_requests", requests_, methods=["GET", "DELETE"]),
        Route("/_script", script, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ])
