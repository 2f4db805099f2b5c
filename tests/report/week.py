"""A hand-made week of decisions with every kind of answer behind them: what the page tests render."""

from __future__ import annotations

from protocol.models import FindingKind
from protocol.report import AgreementReport
from tests.report.decisions import HOUR, A, G, K, decision, finding, report_of

HOSTILE = '<script>window.__owned = 1</script><img src="https://evil.example/x.png" onerror="window.__owned = 2">'


def week_report() -> AgreementReport:
    widened, note = [finding(FindingKind.WIDENED, "security.privileged")], [finding(FindingKind.NOTE, "op")]
    decisions = []
    for day in range(7):
        decisions += [
            decision(A.ENFORCE, K.REVERTED, G.AGREES, findings=widened, specialists={"security": A.ENFORCE}, day=day,
                     llm=(A.ENFORCE, A.ENFORCE)),
            decision(A.ALLOW, K.PERSISTED, G.AGREES, findings=note, day=day, llm=(A.ALLOW, A.ALLOW)),
            decision(A.DEFER, K.REVERTED if day % 3 else K.ADOPTED, G.AGREES if day % 3 else G.DISAGREES,
                     findings=note, day=day, llm=(A.ENFORCE, A.DEFER)),
            decision(A.ESCALATE, K.APPROVED, G.ESCALATION, chosen=A.ENFORCE, day=day,
                     findings=[finding(FindingKind.SECRET_VALUE, "secret.value_changed")]),
        ]
    # free text from the drifted world: the reasoning quotes it, and `by` is whatever Argo CD said
    unsafe = decision(A.ALLOW, K.REVERTED, G.POSSIBLY_UNSAFE, findings=note, after=HOUR / 4, day=5, project="shop")
    assert unsafe.proposal is not None and unsafe.outcome is not None
    unsafe = unsafe.model_copy(update={
        "proposal": unsafe.proposal.model_copy(update={
            "recommendation": unsafe.proposal.recommendation.model_copy(update={"reasoning": HOSTILE})}),
        "outcome": unsafe.outcome.model_copy(update={"by": HOSTILE[:200]})})
    return report_of([*decisions, unsafe])
