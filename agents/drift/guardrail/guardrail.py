"""The guardrail: verify every signature, ask the policy, turn its answer into a Verdict — or fail closed.

The rules live in policies/*.rego only. This module marshals: it drops what does not verify,
builds the policy input, checks that the policy's answer is a well-formed verdict, and when
anything at all goes wrong with the policy it escalates with the reason.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from agents.drift.guardrail.engine import PolicyEngine
from agents.drift.guardrail.errors import PolicyError, PolicyEvaluationError
from agents.drift.guardrail.opa_input import build_input
from protocol.errors import VerificationError, VerifyFailure
from protocol.models import (
    Action,
    DiscardedRecommendation,
    DriftReport,
    Recommendation,
    Scope,
    SignedRecommendation,
    Verdict,
    VerdictReason,
)
from protocol.signing import Verifier

log = logging.getLogger(__name__)


class GuardrailOutcome(BaseModel):
    """The verdict (unsigned: the graph signs it) and everything the audit needs about how it came about."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None = Field(description="{result, decision_id}; None when the policy failed")
    accepted: list[Recommendation] = Field(description="specialist recommendations whose signatures verified")
    proposal: Recommendation | None = Field(default=None, description="the verified proposal, if it verified")
    timings_ms: dict[str, float] = Field(default_factory=dict)


class _PolicyReason(BaseModel):
    code: str = Field(min_length=1)
    message: str


class _PolicyVerdict(BaseModel):
    """The policy's answer as the guardrail accepts it; anything else fails closed."""

    model_config = ConfigDict(extra="ignore")

    action: Action
    requires_approval: StrictBool
    allowed_actions: list[Action] = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)
    reasons: list[_PolicyReason] = Field(default_factory=list)
    scope: Scope | None = None


class Guardrail:
    def __init__(self, verifier: Verifier, engine: PolicyEngine, threshold: float = 0.80) -> None:
        self.verifier = verifier
        self.engine = engine
        self.threshold = threshold

    def _verify(
        self, signed: SignedRecommendation, event_id: str, role: str,
        discarded: list[tuple[str, DiscardedRecommendation]],
    ) -> Recommendation | None:
        agent = signed.recommendation.agent
        try:
            rec = self.verifier.verify_recommendation(signed.jws, event_id)
        except VerificationError as exc:
            discarded.append((role, DiscardedRecommendation(agent=agent, reason=exc.reason.value, detail=exc.detail)))
            return None
        if rec != signed.recommendation:
            discarded.append((role, DiscardedRecommendation(
                agent=agent, reason=VerifyFailure.INVALID_PAYLOAD.value,
                detail="the recommendation carried beside the JWS differs from the signed one",
            )))
            return None
        return rec

    async def evaluate(
        self,
        *,
        report: DriftReport,
        proposal: SignedRecommendation,
        specialists: list[SignedRecommendation],
        expected_specialists: list[str],
        now: datetime,
        second_opinion: Recommendation | None = None,
    ) -> GuardrailOutcome:
        started = time.perf_counter()
        discarded: list[tuple[str, DiscardedRecommendation]] = []
        verified_proposal = self._verify(proposal, report.event_id, "proposal", discarded)
        accepted: list[Recommendation] = []
        for signed in specialists:
            rec = self._verify(signed, report.event_id, "specialist", discarded)
            if rec is None:
                continue
            if any(r.agent == rec.agent for r in accepted):
                discarded.append(("specialist", DiscardedRecommendation(
                    agent=rec.agent, reason="duplicate", detail="a second recommendation from the same agent")))
                continue
            accepted.append(rec)
        answered = {r.agent for r in accepted}
        missing = [name for name in expected_specialists if name not in answered]
        opa_input = build_input(
            report=report, proposal=verified_proposal, accepted=accepted, discarded=discarded,
            expected_specialists=expected_specialists, missing_specialists=missing,
            threshold=self.threshold, now=now, second_opinion=second_opinion,
        )
        verified = time.perf_counter()
        dropped = [d for _, d in discarded]
        opa_result: dict[str, Any] | None = None
        try:
            opa_result = await self.engine.evaluate(opa_input)
            verdict = self._verdict(opa_result, report.event_id, dropped, now)
        except PolicyError as exc:
            log.warning("guardrail fails closed for event %s: %s", report.event_id, exc)
            verdict = self._fail_closed(exc, report.event_id, verified_proposal, dropped, now)
        done = time.perf_counter()
        return GuardrailOutcome(
            verdict=verdict, opa_input=opa_input, opa_result=opa_result, accepted=accepted,
            proposal=verified_proposal,
            timings_ms={
                "verify": (verified - started) * 1000,
                "policy": (done - verified) * 1000,
                "total": (done - started) * 1000,
            },
        )

    def _verdict(
        self, opa_result: dict[str, Any], event_id: str, discarded: list[DiscardedRecommendation], now: datetime
    ) -> Verdict:
        try:
            answer = _PolicyVerdict.model_validate(opa_result.get("result"))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise PolicyEvaluationError(f"policy result is not a verdict: `{where}` {err['msg']}") from exc
        if answer.action not in answer.allowed_actions:
            raise PolicyEvaluationError(f"policy chose {answer.action} but allows only {answer.allowed_actions}")
        try:
            return Verdict(
                event_id=event_id, action=answer.action, requires_approval=answer.requires_approval,
                allowed_actions=answer.allowed_actions, confidence=answer.confidence, threshold=self.threshold,
                reasons=[VerdictReason(code=r.code, message=r.message, source="policy") for r in answer.reasons],
                discarded=discarded, scope=answer.scope, decided_at=now,
            )
        except ValidationError as exc:
            raise PolicyEvaluationError(f"policy result is not a valid verdict: {exc.errors()[0]['msg']}") from exc

    def _fail_closed(
        self, exc: PolicyError, event_id: str, proposal: Recommendation | None,
        discarded: list[DiscardedRecommendation], now: datetime,
    ) -> Verdict:
        reasons = [VerdictReason(code=exc.code, message=f"policy gave no usable verdict, failing closed: {exc}")]
        reasons += [
            VerdictReason(code=f"signature.{d.reason}", message=f"recommendation from {d.agent} discarded: {d.detail}")
            for d in discarded
        ]
        return Verdict(
            event_id=event_id, action=Action.ESCALATE, requires_approval=True, allowed_actions=[Action.ESCALATE],
            confidence=proposal.confidence if proposal is not None else 0.0, threshold=self.threshold,
            reasons=reasons, discarded=discarded, decided_at=now,
        )
