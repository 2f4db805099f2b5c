"""The LLM reasoner: one structured-output call to any OpenAI-compatible endpoint, checked by the rules (two keys).

- Exactly one call per decision; a second only to repair an answer that does not validate.
- The rules reasoner always decides too; its recommendation is returned as `second_opinion`.
- A model can make Driftwise more careful, never less: when it is more permissive than the rules
  (e.g. allow where the rules enforce), the rules' action stands and the confidence drops below the
  threshold; when it is more careful, its action stands and the guardrail sees the disagreement
  with the second opinion and requires a human. When they agree, the lower confidence counts.
- Timeout, refusal, invalid output or an unreachable endpoint: the rules decide, confidence lowered,
  and `LlmUsage.fell_back` says why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Literal

import openai
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agents.drift.reasoning.base import Reasoner, ReasoningInput, ReasoningOutput
from agents.drift.reasoning.prompt import build_messages
from agents.drift.reasoning.rules import RulesReasoner, finish
from protocol.models import Action, Domain, Finding, FindingKind, LlmUsage, Recommendation, Severity

__all__ = ["LlmAnswer", "LlmConfig", "LlmReasoner"]

log = logging.getLogger(__name__)

PERMISSIVE = {Action.ALLOW: 3, Action.DEFER: 2, Action.ENFORCE: 1, Action.ESCALATE: 0}
"""How much of the drift an action lets stand; escalate (a human decides) is the most careful."""
FALLBACK_PENALTY = 0.05
DISAGREEMENT_MARGIN = 0.05


class LlmConfig(BaseModel):
    """What the LLM reasoner needs (mirrors driftwise.settings.LlmSettings; the CLI passes it down)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    max_prompt_chars: int = Field(default=60_000, ge=1000)
    max_output_tokens: int = Field(default=1200, ge=100)


class LlmAnswer(BaseModel):
    """The structured output asked of the model: the recommendation fields it may choose."""

    action: Literal["allow", "defer", "enforce", "escalate"] = Field(description="what to do about the drift")
    confidence: float = Field(description="0..1, calibrated; below 0.8 when the evidence is thin")
    reasoning: str = Field(description="short; cite evidence ids and the exact changed fields")
    evidence_refs: list[str] = Field(description="ids of the evidence relied on")


class _Invalid(Exception):
    """The model answered, but not with a valid LlmAnswer."""


class LlmReasoner:
    name = "llm"

    def __init__(self, config: LlmConfig, fallback: Reasoner | None = None, *, http_client: Any = None) -> None:
        """`http_client`: the process's AsyncClient of the library the openai SDK uses (httpx2 for openai>=3);
        without one the reasoner opens its own (close it with `aclose`)."""
        from langchain_openai import ChatOpenAI  # heavy import, only when an LLM is configured
        from langchain_openai._compat import httpx as sdk_httpx

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
        self._structured = self._chat.with_structured_output(LlmAnswer, include_raw=True)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> LlmReasoner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        rules = (await self.fallback.reason(inp)).recommendation
        usage = LlmUsage(model=self.config.model)
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(self._ask(inp, usage), timeout=self.config.timeout_s * 2 + 1)
        except (TimeoutError, openai.APITimeoutError):
            return self._fall_back(inp, rules, usage, started, f"timeout after {self.config.timeout_s:g}s")
        except openai.APIConnectionError as exc:
            return self._fall_back(inp, rules, usage, started, f"endpoint unreachable: {type(exc).__name__}")
        except openai.APIStatusError as exc:
            return self._fall_back(inp, rules, usage, started, f"endpoint answered HTTP {exc.status_code}")
        except ModelRefusalError as exc:
            return self._fall_back(inp, rules, usage, started, f"model refused: {str(exc)[:200]}")
        except _Invalid as exc:
            return self._fall_back(inp, rules, usage, started, f"invalid output twice: {str(exc)[:200]}")
        except Exception as exc:  # the model is an untrusted edge: anything unexpected falls back, logged
            log.exception("LLM reasoning failed for event %s", inp.event_id)
            return self._fall_back(inp, rules, usage, started, f"error: {type(exc).__name__}")
        usage.latency_ms = round((time.monotonic() - started) * 1000, 1)
        return ReasoningOutput(recommendation=self._combine(inp, answer, rules), second_opinion=rules, llm=usage)

    async def _ask(self, inp: ReasoningInput, usage: LlmUsage) -> LlmAnswer:
        messages, _ = build_messages(inp, self.config.max_prompt_chars)
        try:
            return await self._call(messages, usage)
        except _Invalid as first:
            repair = (
                "human",
                "Your previous answer did not validate against the response schema "
                f"({str(first)[:300]}). Answer again with only the JSON object: action, confidence, reasoning, "
                "evidence_refs.",
            )
            return await self._call([*messages, repair], usage)

    async def _call(self, messages: list[tuple[str, str]], usage: LlmUsage) -> LlmAnswer:
        try:
            result: dict[str, Any] = await self._structured.ainvoke(messages)
        except (ValidationError, json.JSONDecodeError, OutputParserException, ValueError) as exc:
            if isinstance(exc, ModelRefusalError):
                raise
            raise _Invalid(f"{type(exc).__name__}: {exc}") from exc
        raw = result.get("raw")
        if isinstance(raw, AIMessage) and raw.usage_metadata:
            usage.tokens_in += raw.usage_metadata.get("input_tokens", 0)
            usage.tokens_out += raw.usage_metadata.get("output_tokens", 0)
        error = result.get("parsing_error")
        if isinstance(error, ModelRefusalError):
            raise error
        parsed = result.get("parsed")
        if error is not None or not isinstance(parsed, LlmAnswer):
            raise _Invalid(f"{type(error).__name__ if error else 'no answer'}: {str(error)[:300]}")
        if not 0.0 <= parsed.confidence <= 1.0:
            raise _Invalid(f"confidence {parsed.confidence} is outside 0..1")
        return parsed

    def _fall_back(self, inp: ReasoningInput, rules: Recommendation, usage: LlmUsage, started: float,
                   why: str) -> ReasoningOutput:
        log.warning("LLM reasoner fell back to rules for event %s: %s", inp.event_id, why)
        usage.fell_back = why
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
