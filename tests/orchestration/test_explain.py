"""The final panel and the decision's summary explain the final action, not the drift agent's proposal it overruled."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from driftwise.demo import render_decision
from driftwise.explain import explain_final
from protocol.models import (
    Action,
    ArgoNotification,
    Decision,
    DecisionState,
    Domain,
    DriftEvent,
    Recommendation,
    SignedRecommendation,
    SignedVerdict,
    Verdict,
    VerdictReason,
)
from protocol.signing import TrustStore

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
ALLOW_REASONING = "Rule 4 (capacity raised, live evidence justifies it -> allow). Allowed until tomorrow; back-port it."


def rec(agent: str, domain: Domain, action: Action | None, confidence: float, reasoning: str) -> SignedRecommendation:
    kind = "abstain" if action is None else "recommendation"
    return SignedRecommendation(jws="not.a.jws", recommendation=Recommendation(
        kind=kind, event_id="evt-1", agent=agent, domain=domain, action=action, confidence=confidence,
        reasoning=reasoning, created_at=NOW))


def decision(proposal: Action, confidence: float, verdict: Action, reasons: list[tuple[str, str]],
             specialists: list[SignedRecommendation], *, requires_approval: bool | None = None) -> Decision:
    needs = verdict == Action.ESCALATE if requires_approval is None else requires_approval
    return Decision(
        event=DriftEvent(event_id="evt-1", idempotency_key="argocd/payments-api", received_at=NOW,
                         notification=ArgoNotification(app="payments-api", project="prod")),
        state=DecisionState.AWAITING_APPROVAL if needs else DecisionState.DONE, mode="autonomous",
        recommendations=specialists, proposal=rec("drift", Domain.OPERATIONAL, proposal, confidence, ALLOW_REASONING),
        verdict=SignedVerdict(jws="not.a.jws", verdict=Verdict(
            event_id="evt-1", action=verdict, requires_approval=needs, allowed_actions=list(Action),
            confidence=confidence, threshold=0.8, decided_at=NOW,
            reasons=[VerdictReason(code=c, message=m) for c, m in reasons])),
        updated_at=NOW,
    )


COST = rec("cost", Domain.OPERATIONAL, Action.ESCALATE, 0.9, "cpu requests x replicas 0.75 -> 3 (+300%)")
SECURITY = rec("security", Domain.SECURITY, None, 0.9, "No security-relevant change")


def test_a_specialists_escalate_is_explained_above_the_overruled_allow() -> None:
    d = decision(Action.ALLOW, 0.9, Action.ESCALATE,
                 [("policy.specialist_escalate", "specialist cost escalated: a human decides")], [COST, SECURITY])
    explained = explain_final(d)
    assert explained.overruled and [r.agent for r in explained.deciders] == ["cost"]
    assert explained.summary == ("escalate, not the drift agent's allow: policy.specialist_escalate: specialist cost "
                                 "escalated: a human decides")
    console = Console(record=True, width=140)
    summary = render_decision(console, "cost", d, TrustStore(), 500)
    text = console.export_text()
    panel = text[text.index("final action: escalate"):]
    assert summary == explained.summary
    why, overruled = panel.index("Why escalate"), panel.index("Overruled: the drift agent proposed allow")
    assert why < panel.index("cost (operational) said escalate") < overruled < panel.index("Rule 4")


def test_a_low_confidence_allow_says_a_human_approves_it() -> None:
    d = decision(Action.ALLOW, 0.6, Action.ALLOW,
                 [("policy.threshold", "confidence 0.6 is below the threshold 0.8: a human must approve"),
                  ("policy.proposal", "final action follows the proposal of drift: allow")], [SECURITY],
                 requires_approval=True)
    explained = explain_final(d)
    assert explained.action == Action.ESCALATE and explained.overruled and not explained.deciders
    assert explained.because == ["policy.threshold: confidence 0.6 is below the threshold 0.8: a human must approve"]


def test_a_followed_proposal_is_shown_as_it_is() -> None:
    d = decision(Action.ALLOW, 0.9, Action.ALLOW,
                 [("policy.proposal", "final action follows the proposal of drift: allow")], [SECURITY])
    explained = explain_final(d)
    assert not explained.overruled and explained.text() == ALLOW_REASONING
    assert explained.summary == "allow: the drift agent's proposal (confidence 0.90)"
