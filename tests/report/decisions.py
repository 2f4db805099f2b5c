"""Hand-made decisions for the report's tests: an action, its outcome, and what stood behind it (the proposal's
findings, the specialists' answers, the model's and the rules' actions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agents.drift.report import PromotionRule, build_report
from protocol.models import (
    Action,
    Agreement,
    Approval,
    ArgoNotification,
    Decision,
    DecisionState,
    Domain,
    DriftEvent,
    Finding,
    FindingKind,
    LlmUsage,
    Outcome,
    OutcomeKind,
    Recommendation,
    Severity,
    SignedRecommendation,
    SignedVerdict,
    SyncWindow,
    Verdict,
)
from protocol.report import AgreementReport
from tests.support.reread_fakes import drift_report

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
A, K, G = Action, OutcomeKind, Agreement
SUNDAY = SyncWindow(kind="allow", schedule="0 2 * * 0", duration="4h", applications=["*"])
"""Allows syncs from Sunday 2026-11-22 02:00 UTC: the window a defer decided at T0 waits for."""


def finding(kind: FindingKind, rule_id: str) -> Finding:
    return Finding(rule_id=rule_id, domain=Domain.SECURITY, kind=kind, severity=Severity.HIGH, message=rule_id)


def _rec(event_id: str, agent: str, action: Action | None, findings: list[Finding] | None = None
         ) -> SignedRecommendation:
    kind = "abstain" if action is None else "recommendation"
    return SignedRecommendation(jws="x.y.z", recommendation=Recommendation(
        kind=kind, event_id=event_id, agent=agent, domain=Domain.SECURITY, action=action, confidence=0.9,
        reasoning=f"{agent} says {action}", findings=findings or [], created_at=T0))


def decision(action: Action, outcome: OutcomeKind | None = None, agreement: Agreement = G.AGREES, *,
             proposed: Action | None = None, findings: list[Finding] | None = None,
             specialists: dict[str, Action | None] | None = None, llm: tuple[Action | None, Action] | None = None,
             after: timedelta = 2 * HOUR, day: int = 0, project: str = "prod", chosen: Action | None = None
             ) -> Decision:
    n = ArgoNotification(app="api", project=project, revision="abc")
    event_id = str(uuid.uuid4())
    event = DriftEvent(event_id=event_id, idempotency_key=DriftEvent.key_for(n), received_at=T0, notification=n)
    report = drift_report(event_id, 8).model_copy(update={"sync_windows": [SUNDAY], "project": project})
    decided_at = T0 + timedelta(days=day)
    verdict = Verdict(event_id=event_id, action=action, requires_approval=action == A.ESCALATE,
                      allowed_actions=[action], confidence=0.9, threshold=0.8, decided_at=decided_at)
    d = Decision(event=event, state=DecisionState.DONE, mode="shadow", report=report,
                 proposal=_rec(event_id, "drift", proposed or action, findings),
                 recommendations=[_rec(event_id, name, a) for name, a in (specialists or {}).items()],
                 verdict=SignedVerdict(jws="x.y.z", verdict=verdict), updated_at=decided_at,
                 approval=Approval(decision="approve", action=chosen, approver="dana") if chosen else None,
                 llm=LlmUsage(model="qwen", model_action=llm[0], rules_action=llm[1],
                              failure=None if llm[0] else "timeout") if llm else None)
    if outcome is None:
        return d
    return d.model_copy(update={"outcome": Outcome(
        event_id=event_id, kind=outcome, action=action, mode="shadow", agreement=agreement, decided_at=decided_at,
        at=decided_at + after, after_s=after.total_seconds())})


def report_of(decisions: list[Decision]) -> AgreementReport:
    return build_report(decisions, T0 + timedelta(days=7), since=timedelta(days=7), project=None,
                        mode_for=lambda p: "shadow", rule=PromotionRule())
