"""A scripted OpenAI-compatible chat server: try the LLM reasoner offline, and test it.

Serves `POST /v1/chat/completions` and `GET /v1/models` in the OpenAI wire format, including the
structured-output paths langchain-openai uses (`response_format: {type: json_schema}` — the
default of `ChatOpenAI.with_structured_output` — and function/tool calls). Scripts:

- `rules-like`: reads the prompt's data block and answers what Driftwise's rules reasoner would;
- `hostile`: always `allow`, confidence 1.0, reasoning "approved by security";
- `invalid`: answers text that is not JSON;
- `slow`: waits `delay_s` before answering like `rules-like` (to exceed a client timeout);
- `refuse`: a refusal instead of an answer;
- `cut-off`: every answer stops at the token limit (`finish_reason: length`, JSON cut in the middle);
- `cut-off-once`: the first answer of each decision is cut off, the repair is whole (like `rules-like`);
- `no-json-schema`: HTTP 500 to a `json_schema` response_format, as llama.cpp's Python server answers;
  tool calls and JSON mode work (like `rules-like`);
- `json-mode-only`: HTTP 400 to a json_schema response_format and to tools; JSON mode works;
- `contrary`: a confident model that is wrong: `allow` wherever the rules would not, `enforce` where they allow.

With `tokenizer` (a tokenizer.json, or a GGUF file whose vocabulary is read), `usage` counts tokens as
that model would (chat template included); without, it estimates four characters per token.

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
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["SCRIPTS", "ScriptState", "create_app", "load_token_counter"]

_DATA = re.compile(r"<<<DRIFT-DATA (?P<nonce>[0-9a-f]+)>>>\n(?P<body>.*)\n<<<END-DRIFT-DATA (?P=nonce)>>>", re.S)


@dataclass
class ScriptState:
    script: str = "rules-like"
    delay_s: float = 30.0
    model: str = "driftwise-scripted"
    requests: list[dict[str, Any]] = field(default_factory=list)
    count_tokens: Callable[[str], int] | None = None


class Cut(str):
    """Raw content that stopped at the token limit (`finish_reason: length`)."""


class Rejected(Exception):
    """The script answers this request with an HTTP error, as some servers do for what they do not support."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Answer = dict[str, Any] | str | None
"""A dict is the structured answer; a str is raw content (a `Cut` one was cut off); None is a refusal."""


def _content(message: dict[str, Any]) -> Any:
    """A message's content, a list of parts joined into one text."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return content


def _user_text(body: dict[str, Any]) -> str:
    parts = []
    for m in body.get("messages") or []:
        content = _content(m)
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
                "reasoning": rec.reasoning[:500], "evidence_refs": rec.evidence_refs[:12]}
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


def _cut(answer: dict[str, Any]) -> Cut:
    text = json.dumps(answer)
    return Cut(text[: len(text) // 2])


async def _cut_off(body: dict[str, Any], state: ScriptState) -> Answer:
    return _cut(_rules_answer(body))


async def _cut_off_once(body: dict[str, Any], state: ScriptState) -> Answer:
    answer = _rules_answer(body)
    repaired = any(m.get("role") == "user" and "cut off" in str(m.get("content", ""))
                   for m in body.get("messages") or [])
    return answer if repaired else _cut(answer)


def _response_format(body: dict[str, Any]) -> str | None:
    fmt = body.get("response_format")
    return fmt.get("type") if isinstance(fmt, dict) else None


async def _no_json_schema(body: dict[str, Any], state: ScriptState) -> Answer:
    if _response_format(body) == "json_schema":
        raise Rejected(500, "response_format json_schema is not supported")
    return _rules_answer(body)


async def _json_mode_only(body: dict[str, Any], state: ScriptState) -> Answer:
    if _response_format(body) == "json_schema" or body.get("tools"):
        raise Rejected(400, "only response_format json_object is supported")
    return _rules_answer(body)


async def _contrary(body: dict[str, Any], state: ScriptState) -> Answer:
    answer = _rules_answer(body)
    answer["action"] = "enforce" if answer["action"] == "allow" else "allow"
    answer.update(confidence=0.95, reasoning="the model is sure of the opposite", evidence_refs=[])
    return answer


SCRIPTS: dict[str, Callable[[dict[str, Any], ScriptState], Awaitable[Answer]]] = {
    "rules-like": _rules_like,
    "hostile": _hostile,
    "invalid": _invalid,
    "slow": _slow,
    "refuse": _refuse,
    "cut-off": _cut_off,
    "cut-off-once": _cut_off_once,
    "no-json-schema": _no_json_schema,
    "json-mode-only": _json_mode_only,
    "contrary": _contrary,
}


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


def load_token_counter(path: Path) -> Callable[[str], int]:
    """Count tokens with a model's own tokenizer: a tokenizer.json, or the vocabulary inside a GGUF file.

    Needs the `tokens` extra (tokenizers; gguf for a GGUF file). Only Qwen2-style byte-level BPE is read
    from a GGUF (the pre-tokenizer regex is Qwen2's); other vocabularies: pass their tokenizer.json."""
    try:
        from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
        from tokenizers.models import BPE
    except ImportError as exc:
        raise ValueError("counting tokens needs the tokenizers package: pip install -e '.[tokens]'") from exc
    if path.suffix != ".gguf":
        tok = Tokenizer.from_file(str(path))
    else:
        try:
            from gguf import GGUFReader
        except ImportError as exc:
            raise ValueError("reading a GGUF vocabulary needs the gguf package: pip install -e '.[tokens]'") from exc
        reader = GGUFReader(str(path))

        def strings(name: str) -> list[str]:
            found = reader.fields.get(name)
            if found is None:
                raise ValueError(f"{path} has no {name}: not a BPE vocabulary this reader knows")
            return [bytes(found.parts[i]).decode("utf-8") for i in found.data]

        tokens = strings("tokenizer.ggml.tokens")
        merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
        tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
        split = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


CHAT_TEMPLATE_TOKENS = 5
"""Per message, what a ChatML-style template adds (`<|im_start|>role\n` … `<|im_end|>\n`)."""


def _prompt_tokens(body: dict[str, Any], count: Callable[[str], int] | None) -> int:
    if count is None:
        return _estimate(json.dumps(body.get("messages") or []))
    total = 0
    for m in body.get("messages") or []:
        total += count(str(_content(m) or "")) + CHAT_TEMPLATE_TOKENS
    for tool in body.get("tools") or []:
        total += count(json.dumps(tool))  # a chat template writes the tools into the prompt
    return total  # a json_schema response_format is a grammar (llama.cpp), not prompt


def _completion(body: dict[str, Any], answer: Answer, model: str,
                count: Callable[[str], int] | None = None) -> dict[str, Any]:
    tools = body.get("tools") or []
    tool_name = None
    if tools and isinstance(tools[0], dict):
        tool_name = (tools[0].get("function") or {}).get("name")
    content_text = json.dumps(answer) if isinstance(answer, dict) else (answer or "")
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    finish = "stop"
    if answer is None:
        message["refusal"] = "I can't help with that request."
    elif tool_name and isinstance(answer, dict | Cut) and body.get("response_format") is None:
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": tool_name, "arguments": content_text}}]
        finish = "tool_calls"
    else:
        message["content"] = content_text
    if isinstance(answer, Cut):
        finish = "length"
    usage_in = _prompt_tokens(body, count)
    usage_out = (count or _estimate)(content_text or str(message["refusal"]))
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
        try:
            answer = await SCRIPTS[state.script](body, state)
        except Rejected as exc:
            return _error(exc.status, str(exc))
        return JSONResponse(_completion(body, answer, state.model, state.count_tokens))

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
