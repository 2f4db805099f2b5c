"""The LLM reasoner: one structured-output call to any OpenAI-compatible endpoint, checked by the rules (two keys).

- Exactly one call per decision; a second only to repair an answer that does not validate or was cut off
  at the token limit (`finish_reason: length`).
- The answer's shape is asked the way the endpoint accepts (`llm.structured_output`): a JSON-schema
  response_format, a forced tool call, or JSON mode with the schema in the prompt. `auto` probes once,
  at start-up in the background (a local model may take seconds for even a tiny prompt), tries them in
  that order and keeps the first that answers a valid object; llama.cpp's Python server, for one,
  answers HTTP 500 to a json_schema response_format.
- The rules reasoner always decides too; its recommendation is returned as `second_opinion`.
- A model can make Driftwise more careful, never less: when it is more permissive than the rules
  (e.g. allow where the rules enforce), the rules' action stands and the confidence drops below the
  threshold; when it is more careful, its action stands and the guardrail sees the disagreement
  with the second opinion and requires a human. When they agree, the lower confidence counts.
- Timeout, refusal, invalid or cut-off output, an unreachable endpoint: the rules decide, confidence
  lowered, and `LlmUsage.failure`/`fell_back` say why (both audited with the decision). `LlmUsage`
  also keeps what the model alone answered, for the evaluation harness.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

import openai
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field, SecretStr, ValidationError

from agents.drift.config import LlmConfig
from agents.drift.reasoning.base import Reasoner, ReasoningInput, ReasoningOutput
from agents.drift.reasoning.prompt import build_messages
from agents.drift.reasoning.rules import RulesReasoner, finish
from protocol.models import (
    Action,
    Domain,
    Finding,
    FindingKind,
    LlmFailure,
    LlmUsage,
    Recommendation,
    Severity,
    StructuredOutput,
)

__all__ = ["METHODS", "LlmAnswer", "LlmConfig", "LlmFailed", "LlmReasoner", "Probe"]

log = logging.getLogger(__name__)

PERMISSIVE = {Action.ALLOW: 3, Action.DEFER: 2, Action.ENFORCE: 1, Action.ESCALATE: 0}
"""How much of the drift an action lets stand; escalate (a human decides) is the most careful."""
FALLBACK_PENALTY = 0.05
DISAGREEMENT_MARGIN = 0.05
METHODS: tuple[StructuredOutput, ...] = get_args(StructuredOutput)
"""The order `auto` tries them in: the strictest the endpoint accepts wins."""
REASONING_CHARS = 600
"""The schema bounds the reasoning: a small model that rambles is cut off at the token limit instead."""
PROBE_PROMPT = ("This is a connectivity check. Answer with action escalate, confidence 0.5, reasoning \"probe\" "
                "and no evidence_refs.")


class LlmAnswer(BaseModel):
    """The structured output asked of the model: the recommendation fields it may choose."""

    action: Literal["allow", "defer", "enforce", "escalate"] = Field(description="what to do about the drift")
    confidence: float = Field(ge=0.0, le=1.0, description="0..1, calibrated; below 0.8 when the evidence is thin")
    reasoning: str = Field(max_length=REASONING_CHARS,
                           description="at most three sentences; cite evidence ids and the exact changed fields")
    evidence_refs: list[str] = Field(max_length=12, description="ids of the evidence relied on")


SCHEMA_HINT = ("Answer with one JSON object, and nothing else, valid against this JSON Schema: "
               + json.dumps(LlmAnswer.model_json_schema(), separators=(",", ":")))
"""JSON mode only promises some JSON object: the shape goes into the prompt."""


class LlmFailed(Exception):
    """The model's answer cannot be used; `kind` is what the harness counts."""

    def __init__(self, kind: LlmFailure, why: str) -> None:
        super().__init__(why)
        self.kind: LlmFailure = kind


@dataclass(frozen=True)
class Probe:
    """What one probe of the endpoint found: the method it accepts (None: none of them) and the cost."""

    method: StructuredOutput | None
    latency_s: float
    prompt_tokens: int
    tried: dict[str, str]


class LlmReasoner:
    name = "llm"

    def __init__(self, config: LlmConfig, fallback: Reasoner | None = None, *, http_client: Any = None) -> None:
        """`http_client`: the process's AsyncClient of the library the openai SDK uses (httpx2 for openai>=3);
        without one the reasoner opens its own (close it with `aclose`)."""
        from langchain_openai import ChatOpenAI  # heavy import, only when an LLM is configured
        from langchain_openai._compat import httpx as sdk_httpx

        if not config.base_url:
            raise ValueError("the LLM reasoner needs llm.base_url (an OpenAI-compatible endpoint)")
        self.config = config
        self.fallback = fallback or RulesReasoner()
        self._owns_http = http_client is None
        # Our own client, not langchain's process-wide cached one: that one is bound to the first event loop.
        self._http = http_client or sdk_httpx.AsyncClient(timeout=config.timeout_s)
        self._chat = ChatOpenAI(
            http_async_client=self._http,
            model=config.model,
            base_url=config.base_url,
            api_key=config.api_key or SecretStr("not-needed"),
            timeout=config.timeout_s,
            max_retries=0,  # one call per decision: a retry is ours to decide (repair), not the client's
            max_tokens=config.max_output_tokens,
            temperature=0,
            use_responses_api=False,
        )
        self._runnables: dict[StructuredOutput, Any] = {}
        self._method: StructuredOutput | None = None if config.structured_output == "auto" else config.structured_output
        self._settled = config.structured_output != "auto"
        self._probe_lock = asyncio.Lock()
        self._probe_task: asyncio.Task[None] | None = None

    def _structured(self, method: StructuredOutput) -> Any:
        if method not in self._runnables:
            self._runnables[method] = self._chat.with_structured_output(LlmAnswer, method=method, include_raw=True)
        return self._runnables[method]

    async def start(self) -> None:
        """Begin the `auto` probe in the background; the first decision waits for it if it is still running."""
        if not self._settled and self._probe_task is None:
            self._probe_task = asyncio.create_task(self._settle(), name="llm-probe")

    async def aclose(self) -> None:
        if self._probe_task is not None and not self._probe_task.done():
            self._probe_task.cancel()
            await asyncio.gather(self._probe_task, return_exceptions=True)
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> LlmReasoner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def method(self) -> StructuredOutput | None:
        """The method in use (None while `auto` has not settled, or when the endpoint accepted none)."""
        return self._method

    async def probe(self, prompt: str = PROBE_PROMPT, *, system: str | None = None) -> Probe:
        """Try each method (or the configured one) with `prompt`; the first valid answer settles it.
        An endpoint that does not answer at all raises `LlmFailed("unreachable" | "timeout")`: nothing is learnt."""
        tried: dict[str, str] = {}
        methods = METHODS if self.config.structured_output == "auto" else (self.config.structured_output,)
        messages = [("system", system or "You answer connectivity checks."), ("human", prompt)]
        for method in methods:
            usage = LlmUsage(model=self.config.model)
            started = time.monotonic()
            try:
                await asyncio.wait_for(self._call(method, messages, usage), timeout=self.config.timeout_s + 1)
            except LlmFailed as exc:
                if exc.kind in ("unreachable", "timeout"):
                    raise
                if exc.kind in ("http_error", "invalid", "error"):  # refused or not kept to: try the next one
                    tried[method] = f"{exc.kind}: {exc}"[:300]
                    continue
                # cut off or refused: the endpoint took the method and answered in it
                tried[method] = f"accepted, answer {exc.kind}"
            except TimeoutError as exc:
                raise LlmFailed("timeout", f"no answer within {self.config.timeout_s:g}s") from exc
            return Probe(method=method, latency_s=time.monotonic() - started, prompt_tokens=usage.tokens_in,
                         tried=tried)
        return Probe(method=None, latency_s=0.0, prompt_tokens=0, tried=tried)

    async def _settle(self) -> None:
        """Settle `auto` once; an endpoint that cannot be reached leaves it for the next decision to try."""
        async with self._probe_lock:
            if self._settled:
                return
            try:
                found = await self.probe()
            except LlmFailed as exc:
                log.warning("LLM endpoint %s not probed (%s): the next decision tries again", self.config.base_url, exc)
                return
            self._method, self._settled = found.method, True
            if found.method is None:
                log.error("LLM endpoint %s accepts none of %s (%s): every decision falls back to the rules; set "
                          "llm.structured_output to what it supports", self.config.base_url, ", ".join(METHODS),
                          "; ".join(f"{m}: {why}" for m, why in found.tried.items()))
            else:
                log.info("LLM endpoint %s: structured output by %s", self.config.base_url, found.method)

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        rules = (await self.fallback.reason(inp)).recommendation
        usage = LlmUsage(model=self.config.model, rules_action=rules.action)
        started = time.monotonic()
        try:
            if not self._settled:
                await asyncio.wait_for(self._settle(), timeout=self.config.timeout_s * len(METHODS) + 1)
            if not self._settled:
                raise LlmFailed("unreachable", f"endpoint unreachable: {self.config.base_url} could not be probed")
            if self._method is None:
                raise LlmFailed("unsupported", "the endpoint accepts no structured-output method")
            usage.structured_output = self._method
            answer = await asyncio.wait_for(self._ask(self._method, inp, usage), timeout=self.config.timeout_s * 2 + 1)
        except LlmFailed as exc:
            return self._fall_back(inp, rules, usage, started, exc.kind, str(exc))
        except TimeoutError:
            return self._fall_back(inp, rules, usage, started, "timeout", f"timeout after {self.config.timeout_s:g}s")
        except Exception as exc:  # the model is an untrusted edge: anything unexpected falls back, logged
            log.exception("LLM reasoning failed for event %s", inp.event_id)
            return self._fall_back(inp, rules, usage, started, "error", f"error: {type(exc).__name__}")
        usage.latency_ms = round((time.monotonic() - started) * 1000, 1)
        usage.model_action, usage.model_confidence = Action(answer.action), answer.confidence
        return ReasoningOutput(recommendation=self._combine(inp, answer, rules), second_opinion=rules, llm=usage)

    async def _ask(self, method: StructuredOutput, inp: ReasoningInput, usage: LlmUsage) -> LlmAnswer:
        messages, _ = build_messages(inp, self.config.max_prompt_chars, detail=self.config.prompt)
        try:
            return await self._call(method, messages, usage)
        except LlmFailed as first:
            if first.kind == "cut_off":
                repair = ("human", "Your previous answer was cut off at the token limit. Answer again, briefly: the "
                                   "JSON object only, reasoning in at most two sentences.")
            elif first.kind == "invalid":
                repair = ("human", "Your previous answer did not validate against the response schema "
                                   f"({str(first)[:300]}). Answer again with only the JSON object: action, confidence, "
                                   "reasoning, evidence_refs.")
            else:
                raise
            try:
                return await self._call(method, [*messages, repair], usage)
            except LlmFailed as second:
                if second.kind in ("cut_off", "invalid"):
                    raise LlmFailed(second.kind, f"{second.kind.replace('_', ' ')} twice: {second}") from second
                raise

    async def _call(self, method: StructuredOutput, messages: list[tuple[str, str]], usage: LlmUsage) -> LlmAnswer:
        if method == "json_mode":
            system, *rest = messages
            messages = [(system[0], f"{system[1]}\n\n{SCHEMA_HINT}"), *rest]
        usage.calls += 1
        try:
            result: dict[str, Any] = await self._structured(method).ainvoke(messages)
        except ModelRefusalError as exc:
            raise LlmFailed("refused", f"model refused: {str(exc)[:200]}") from exc
        except openai.LengthFinishReasonError as exc:  # the json_schema path parses in the SDK, which raises
            counted = exc.completion.usage
            if counted is not None:
                usage.tokens_in += counted.prompt_tokens
                usage.tokens_out += counted.completion_tokens
            raise LlmFailed("cut_off", f"the answer reached max_output_tokens={self.config.max_output_tokens}") from exc
        except (ValidationError, json.JSONDecodeError, OutputParserException, ValueError) as exc:
            raise LlmFailed("invalid", f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        except openai.APITimeoutError as exc:
            raise LlmFailed("timeout", f"timeout after {self.config.timeout_s:g}s") from exc
        except openai.APIConnectionError as exc:
            raise LlmFailed("unreachable", f"endpoint unreachable: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            raise LlmFailed("http_error", f"endpoint answered HTTP {exc.status_code}") from exc
        raw = result.get("raw")
        finish_reason = None
        if isinstance(raw, AIMessage):
            if raw.usage_metadata:
                usage.tokens_in += raw.usage_metadata.get("input_tokens", 0)
                usage.tokens_out += raw.usage_metadata.get("output_tokens", 0)
            finish_reason = (raw.response_metadata or {}).get("finish_reason")
        error = result.get("parsing_error")
        if isinstance(error, ModelRefusalError):
            raise LlmFailed("refused", f"model refused: {str(error)[:200]}")
        if finish_reason == "length":
            raise LlmFailed("cut_off", f"the answer reached max_output_tokens={self.config.max_output_tokens}")
        parsed = result.get("parsed")
        if error is not None or not isinstance(parsed, LlmAnswer):
            raise LlmFailed("invalid", f"{type(error).__name__ if error else 'no answer'}: {str(error)[:300]}")
        return parsed

    def _fall_back(self, inp: ReasoningInput, rules: Recommendation, usage: LlmUsage, started: float,
                   failure: LlmFailure, why: str) -> ReasoningOutput:
        log.warning("LLM reasoner fell back to rules for event %s: %s", inp.event_id, why)
        usage.failure, usage.fell_back = failure, why
        usage.latency_ms = round((time.monotonic() - started) * 1000, 1)
        rec = rules.model_copy(update={
            "confidence": round(max(0.0, rules.confidence - FALLBACK_PENALTY), 3),
            "reasoning": (f"[LLM unavailable ({why}); rules reasoner decided, confidence lowered] "
                          + rules.reasoning)[:20_000],
        })
        return ReasoningOutput(recommendation=rec, second_opinion=rules, llm=usage)

    def _combine(self, inp: ReasoningInput, answer: LlmAnswer, rules: Recommendation) -> Recommendation:
        model_action = Action(answer.action)
        assert rules.action is not None
        known = {e.id for e in inp.evidence} | {r for s in inp.specialists for r in s.evidence_refs}
        refs = [r for r in answer.evidence_refs if r in known]
        text = " ".join(answer.reasoning.split())[:4000]
        threshold = inp.confidence_threshold
        if model_action == rules.action:
            return finish(inp, model_action, min(answer.confidence, rules.confidence),
                          f"[model {self.config.model}, agrees with rules] {text}",
                          refs=refs or rules.evidence_refs, findings=rules.findings, domain=rules.domain)
        disagreement = Finding(
            rule_id="llm.disagrees_with_rules", domain=Domain.OPERATIONAL, kind=FindingKind.NOTE,
            severity=Severity.MEDIUM,
            message=f"model said {model_action.value} ({answer.confidence:.2f}), rules say {rules.action.value} "
                    f"({rules.confidence:.2f}): a human decides",
        )
        if PERMISSIVE[model_action] > PERMISSIVE[rules.action]:
            # Less careful than the rules: the rules' action stands, and a human must look.
            confidence = min(rules.confidence, max(0.0, threshold - DISAGREEMENT_MARGIN))
            return rules.model_copy(update={
                "confidence": round(confidence, 3),
                "findings": [*rules.findings, disagreement],
                "reasoning": (f"[model {self.config.model} proposed {model_action.value}, more permissive than the "
                              f"rules; the rules' {rules.action.value} stands, confidence lowered] "
                              + rules.reasoning)[:20_000],
            })
        return finish(inp, model_action, min(answer.confidence, rules.confidence),
                      f"[model {self.config.model}, more careful than rules ({rules.action.value})] {text}",
                      refs=refs, findings=[*rules.findings, disagreement], domain=Domain.OPERATIONAL)
