"""The report's new numbers from hand-made decisions: agreement per rubric rule (from the proposal's typed
findings), per finding, per specialist (each answer judged against the outcome as if it had been decided),
the model's second opinions against the rules', per project and action, and per day."""

from __future__ import annotations

import pytest

from agents.drift.answers import judged, rubric_rule
from protocol.models import Action, Finding, FindingKind
from tests.report.decisions import HOUR, A, G, K, decision, finding, report_of


@pytest.mark.parametrize(("findings", "proposed", "rule"), [
    ([finding(FindingKind.WIDENED, "security.privileged")], A.ENFORCE, "1"),
    # a sync window turned rule 1's enforce into an escalation: still rule 1
    ([finding(FindingKind.WIDENED, "security.privileged")], A.ESCALATE, "1"),
    # first rule first: a widening beside a Secret value is rule 1
    ([finding(FindingKind.SECRET_VALUE, "secret.value_changed"), finding(FindingKind.WIDENED, "x")], A.ENFORCE,
     "1"),
    ([finding(FindingKind.SECRET_VALUE, "secret.value_changed")], A.ESCALATE, "2"),
    ([finding(FindingKind.FREEZE, "compliance.freeze")], A.ESCALATE, "3"),
    ([finding(FindingKind.UNCLASSIFIED, "pack.unclassified")], A.ESCALATE, "7"),
    ([finding(FindingKind.NOTE, "operational.change")], A.ALLOW, "4"),
    ([finding(FindingKind.NOTE, "operational.change")], A.ENFORCE, "5"),
    ([finding(FindingKind.STRENGTHENED, "pack.x.control-strengthened")], A.DEFER, "6"),
    ([], A.ESCALATE, "7"),
])
def test_the_rubric_rule_is_read_from_the_proposals_typed_findings(findings: list[Finding], proposed: Action,
                                                                   rule: str) -> None:
    assert rubric_rule(decision(proposed, findings=findings)) == rule


def test_an_answer_other_than_the_decided_one_is_judged_by_the_same_table() -> None:
    reverted_soon = decision(A.ENFORCE, K.REVERTED, G.AGREES, after=HOUR / 4)
    assert judged(A.ENFORCE, reverted_soon) == G.AGREES  # the decided action: the outcome's own agreement
    assert judged(A.ALLOW, reverted_soon) == G.POSSIBLY_UNSAFE
    assert judged(A.ESCALATE, reverted_soon) == G.ESCALATION
    # a defer's window comes from the decision's report: a revert before Sunday 02:00 agrees, after it not
    assert judged(A.DEFER, reverted_soon) == G.AGREES
    late = decision(A.ENFORCE, K.REVERTED, G.AGREES, after=48 * HOUR)
    assert judged(A.DEFER, late) == G.DISAGREES
    # an approval agrees with the action the approver chose
    approved = decision(A.ESCALATE, K.APPROVED, G.ESCALATION, chosen=A.ENFORCE)
    assert (judged(A.ENFORCE, approved), judged(A.ALLOW, approved)) == (G.AGREES, G.DISAGREES)
    assert judged(A.ALLOW, decision(A.ENFORCE)) is None  # no outcome yet


def test_agreement_per_rule_finding_specialist_and_project_action() -> None:
    widened = [finding(FindingKind.WIDENED, "security.privileged")]
    note = [finding(FindingKind.NOTE, "operational.change")]
    decisions = [
        decision(A.ENFORCE, K.REVERTED, G.AGREES, findings=widened, specialists={"security": A.ENFORCE,
                                                                                 "compliance": None}),
        decision(A.ENFORCE, K.ADOPTED, G.DISAGREES, findings=widened, specialists={"security": A.ALLOW}),
        decision(A.ALLOW, K.PERSISTED, G.AGREES, findings=note, specialists={"security": A.ENFORCE},
                 project="shop"),
        decision(A.ALLOW, K.REVERTED, G.POSSIBLY_UNSAFE, findings=note, after=HOUR / 2, project="shop"),
        decision(A.ESCALATE, K.PERSISTED, G.ESCALATION, findings=[finding(FindingKind.SECRET_VALUE, "secret.v")],
                 specialists={"security": A.ESCALATE}),
    ]
    r = report_of(decisions)
    assert set(r.per_rule) == {"1", "2", "4"}
    assert (r.per_rule["1"].judged, r.per_rule["1"].agrees, r.per_rule["1"].ratio) == (2, 1, 0.5)
    assert (r.per_rule["4"].judged, r.per_rule["4"].possibly_unsafe) == (2, 1)
    assert (r.per_rule["2"].judged, r.per_rule["2"].escalations) == (0, 1)
    assert r.per_finding["security.privileged"] == r.per_rule["1"]
    assert r.per_finding["operational.change"].decided == 2
    security = r.per_specialist["security"]
    # enforce/reverted agrees; allow/adopted agrees (the decided enforce did not); enforce/persisted disagrees;
    # its escalation is counted apart
    assert (security.answered, security.agreement.agrees, security.agreement.disagrees,
            security.agreement.escalations) == (4, 2, 1, 1)
    s = security
    assert (s.differed, s.differed_judged, s.differed_right, s.decided_right) == (2, 2, 1, 1)
    assert (r.per_specialist["compliance"].answered, r.per_specialist["compliance"].abstained) == (0, 1)
    assert r.per_project_action["shop"]["allow"].ratio == 0.5
    assert r.per_project_action["prod"]["enforce"].ratio == 0.5
    assert r.second_opinions is None  # no decision asked a model


def test_second_opinions_say_how_often_the_model_was_right_where_it_disagreed_with_the_rules() -> None:
    decisions = [
        # the model said allow, the rules enforce; the drift was kept: the model was right
        decision(A.ENFORCE, K.ADOPTED, G.DISAGREES, llm=(A.ALLOW, A.ENFORCE)),
        # the model said allow, the rules enforce; someone reverted it at once: the rules were right
        decision(A.ENFORCE, K.REVERTED, G.AGREES, llm=(A.ALLOW, A.ENFORCE), after=HOUR / 6),
        # the model said enforce, the rules allow (the careful answer stands); the drift persisted: rules right
        decision(A.ENFORCE, K.PERSISTED, G.DISAGREES, llm=(A.ENFORCE, A.ALLOW)),
        decision(A.DEFER, K.REVERTED, G.AGREES, llm=(A.DEFER, A.DEFER)),  # agreed with the rules
        decision(A.DEFER, K.PERSISTED, G.DISAGREES, llm=(None, A.DEFER)),  # the model timed out
        decision(A.DEFER),  # no model asked
    ]
    s = report_of(decisions).second_opinions
    assert s is not None
    assert (s.models, s.decisions, s.failures) == (["qwen"], 5, 1)
    assert (s.model.answered, s.model.differed, s.model.differed_judged, s.model.differed_right) == (4, 3, 3, 1)
    assert s.model.decided_right == 2  # here `decided` is the rules' answer
    assert s.right_ratio == round(1 / 3, 4)
    assert (s.model.agreement.agrees, s.model.agreement.possibly_unsafe) == (2, 1)
    assert (s.rules.judged, s.rules.agrees) == (4, 3)


def test_agreement_over_time_lists_every_day_of_the_span() -> None:
    decisions = [decision(A.ENFORCE, K.REVERTED, G.AGREES, day=0), decision(A.ENFORCE, K.ADOPTED, G.DISAGREES),
                 decision(A.ENFORCE, K.REVERTED, G.AGREES, day=2), decision(A.ALLOW, day=2)]
    daily = report_of(decisions).daily
    assert [(d.day.isoformat(), d.decided, d.judged, d.ratio) for d in daily] == [
        ("2026-11-20", 2, 2, 0.5), ("2026-11-21", 0, 0, None), ("2026-11-22", 2, 1, 1.0)]
