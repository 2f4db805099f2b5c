"""Decisions as the drift agent records them, built for the console's tests: a drift report, evidence, a
specialist's signed answer (one discarded), the proposal, the verdict. Any text can be made hostile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.drift.store import Cursor, DecisionFilter, EventStore
from protocol.context import Incident, Incidents
from protocol.models import (
    Action,
    ArgoNotification,
    Decision,
    DecisionState,
    DiscardedRecommendation,
    Domain,
    DriftEvent,
    DriftReport,
    Evidence,
    FieldChange,
    Recommendation,
    ResourceDrift,
    ResourceRef,
    SignedRecommendation,
    SignedVerdict,
    SyncWindow,
    Verdict,
    VerdictReason,
)

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def decision(n: int, *, app: str = "payments-api", project: str = "prod", state: DecisionState =
             DecisionState.AWAITING_APPROVAL, action: Action = Action.ENFORCE, mode: str = "advisory",
             text: str = "an operator raised replicas", received_at: datetime | None = None,
             backport_patch: str | None = None) -> Decision:
    """Decision number `n`; `text` lands in every attacker-controlled place a page shows."""
    at = received_at or T0 + timedelta(seconds=n)
    event_id = f"ev-{n:06d}"
    notification = ArgoNotification(app=app, project=project, revision="5f2c1e9",
                                    argocd_url="https://argocd.example.internal/applications/" + app)
    event = DriftEvent(event_id=event_id, idempotency_key=f"argocd/{app}", received_at=at, notification=notification)
    ref = ResourceRef(group="apps", kind="Deployment", namespace="payments", name=app)
    report = DriftReport(
        event_id=event_id, application=app, project=project, observed_at=at,
        sync_windows=[SyncWindow(kind="allow", schedule="0 22 * * *", duration="2h", applications=[app])],
        drifts=[ResourceDrift(ref=ref, changed_by=[text], changed_at=at, changes=[
            FieldChange(path="/spec/replicas", op="replace", before=3, after=12),
            FieldChange(path="/metadata/annotations/note", op="add", after=text)])])
    evidence = [Evidence(id="pd-1", source="pagerduty", tool="open_incidents", observed_at=at, value=Incidents(
        service=app, incidents=[Incident(id="P1", title=text, status="triggered", created_at=at)]))]
    security = Recommendation(event_id=event_id, agent="security", domain=Domain.SECURITY, action=Action.ALLOW,
                              confidence=0.9, reasoning=text, evidence_refs=["pd-1"], created_at=at)
    compliance = Recommendation(event_id=event_id, agent="compliance", domain=Domain.COMPLIANCE, action=Action.ALLOW,
                                confidence=0.9, reasoning="forged", created_at=at)
    proposal = Recommendation(event_id=event_id, agent="drift", domain=Domain.OPERATIONAL, action=action,
                              confidence=0.7, reasoning=f"proposal because {text}", evidence_refs=["pd-1"],
                              created_at=at)
    verdict = Verdict(event_id=event_id, action=action, requires_approval=True,
                      allowed_actions=[Action.ENFORCE, Action.DEFER, Action.ESCALATE] if action != Action.ALLOW
                      else [Action.ALLOW, Action.ESCALATE], confidence=0.7, threshold=0.8,
                      reasons=[VerdictReason(code="policy.threshold", message=f"confidence 0.70 < 0.80: {text}")],
                      discarded=[DiscardedRecommendation(agent="compliance", reason="signature")], decided_at=at)
    return Decision(event=event, state=state, mode=mode, report=report, evidence=evidence,
                    recommendations=[SignedRecommendation(jws="x.y.z", recommendation=security),
                                     SignedRecommendation(jws="x.y.z", recommendation=compliance)],
                    proposal=SignedRecommendation(jws="x.y.z", recommendation=proposal),
                    verdict=SignedVerdict(jws="x.y.z", verdict=verdict), backport_patch=backport_patch, updated_at=at)


async def every_page(store: EventStore, where: DecisionFilter) -> list[list[str]]:
    """Each page's event ids, following the keyset cursor from `where` until no next page exists."""
    pages: list[list[str]] = []
    while True:
        page = await store.page(where)
        pages.append([d.event.event_id for d in page.decisions])
        if not page.more:
            return pages
        last = page.decisions[-1]
        where = where.model_copy(update={"before": Cursor(received_at=last.event.received_at,
                                                          event_id=last.event.event_id)})
