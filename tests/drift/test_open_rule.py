"""The open-decision rule's two tables (agents/drift/open_rule.py), row by row, and admission's supersede of a
deferred decision (its pending sync cancelled in the real acting store) when the revision changed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.drift.acting.store import ActingStore
from agents.drift.admission import Admission
from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.audit import AuditLog
from agents.drift.open_rule import Ruling, changes_digest, in_flight, is_open, rule
from agents.drift.store import EventStore
from protocol.models import (
    Action,
    AppliedAction,
    Approval,
    ArgoNotification,
    Decision,
    DecisionState,
    DriftEvent,
    SignedVerdict,
    Verdict,
)
from tests.support.reread_fakes import NOW, drift_report

REVISION = "abc1234"


def _decision(state: DecisionState, action: Action | None = None, applied: tuple[str, ...] = (),
              approval: Approval | None = None, replicas: int = 8, revision: str = REVISION) -> Decision:
    n = ArgoNotification(app="api", project="prod", revision=revision)
    event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n), received_at=NOW,
                       notification=n)
    verdict = None
    if action is not None:
        verdict = SignedVerdict(jws="x.y.z", verdict=Verdict(
            event_id=event.event_id, action=action, requires_approval=action == Action.ESCALATE,
            allowed_actions=[action], confidence=0.9, threshold=0.8, decided_at=NOW))
    acts = [AppliedAction(kind=k.split(":")[0], mode="autonomous", executed=True, at=NOW,  # type: ignore[arg-type]
                          detail={"reason": k.split(":")[1]} if ":" in k else {}) for k in applied]
    return Decision(event=event, state=state, verdict=verdict, applied=acts, approval=approval,
                    report=drift_report(event.event_id, replicas, revision), updated_at=NOW)


REJECT = Approval(decision="reject", approver="sre")
APPROVE_DEFER = Approval(decision="approve", action=Action.DEFER, approver="sre")


@pytest.mark.parametrize(("decision", "open_", "flying"), [
    (_decision(DecisionState.RECEIVED), True, True),
    (_decision(DecisionState.DECIDING), True, True),
    (_decision(DecisionState.AWAITING_APPROVAL, Action.ESCALATE), True, False),
    (_decision(DecisionState.APPLYING, Action.ESCALATE), True, True),
    (_decision(DecisionState.DONE, Action.DEFER, ("schedule",)), True, False),
    (_decision(DecisionState.DONE, Action.DEFER, ("schedule", "dry_run_sync:deferred", "sync:deferred")), False,
     False),
    (_decision(DecisionState.DONE, Action.ESCALATE, ("schedule",), approval=APPROVE_DEFER), True, False),
    (_decision(DecisionState.DONE, Action.ALLOW, ("ignore_differences", "annotate")), True, False),
    (_decision(DecisionState.DONE, Action.ALLOW, ("ignore_differences", "remove_ignore_differences")), False,
     False),
    (_decision(DecisionState.DONE, Action.ENFORCE, ("dry_run_sync:enforce", "sync:enforce")), False, False),
    (_decision(DecisionState.DONE, Action.ESCALATE, approval=REJECT), False, False),
    (_decision(DecisionState.FAILED, Action.ENFORCE), False, False),
    (_decision(DecisionState.SUPERSEDED, Action.ESCALATE), False, False),
    (_decision(DecisionState.UNKNOWN_APPLICATION), False, False),
], ids=["received", "deciding", "awaiting", "applying", "deferred-pending", "deferred-synced",
        "approved-defer-pending", "allowed-running", "allowed-expired", "enforced", "rejected", "failed",
        "superseded", "unknown-application"])
def test_open_and_in_flight_follow_the_table(decision: Decision, open_: bool, flying: bool) -> None:
    assert is_open(decision) is open_
    assert in_flight(decision) is flying


def test_shadow_actions_that_never_ran_leave_nothing_open() -> None:
    shadow = _decision(DecisionState.DONE, Action.DEFER)
    shadow.applied.append(AppliedAction(kind="schedule", mode="shadow", executed=False, at=NOW))
    assert not is_open(shadow)


def test_rule_joins_supersedes_or_decides() -> None:
    awaiting = _decision(DecisionState.AWAITING_APPROVAL, Action.ESCALATE)
    enforced = _decision(DecisionState.DONE, Action.ENFORCE)
    same, changed = changes_digest(drift_report("e", 8, REVISION)), changes_digest(drift_report("e", 9, REVISION))
    assert rule("abc1234", same, None).ruling == Ruling.DECIDE
    assert rule("abc1234", same, awaiting).ruling == Ruling.JOIN
    assert rule("abc1234", same, enforced).ruling == Ruling.JOIN  # a retry after the end
    assert rule("abc1234", changed, awaiting).ruling == Ruling.SUPERSEDE
    assert rule("def5678", same, awaiting).ruling == Ruling.SUPERSEDE  # the revision changed
    assert rule("abc1234", changed, enforced).ruling == Ruling.DECIDE
    assert rule("def5678", same, enforced).ruling == Ruling.DECIDE
    assert rule("abc1234", same, awaiting).other is awaiting


class FakeArgo:
    """The two reads admission makes, shaped as the Argo CD API answers them."""

    def __init__(self, revision: str, replicas: int) -> None:
        self.revision, self.replicas = revision, replicas

    async def application(self, name: str, app_namespace: str | None = None) -> ArgoApplication:
        return ArgoApplication.model_validate({
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "prod", "destination": {"namespace": "shop"}},
            "status": {"sync": {"status": "OutOfSync", "revision": self.revision},
                       "resources": [{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "api",
                                      "status": "OutOfSync"}]}})

    async def managed_resources(self, name: str, app_namespace: str | None = None) -> list[ManagedResource]:
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}
        return [ManagedResource.model_validate({
            "group": "apps", "kind": "Deployment", "namespace": "shop", "name": "api",
            "targetState": json.dumps({**obj, "spec": {"replicas": 3}}),
            "liveState": json.dumps({**obj, "spec": {"replicas": self.replicas}})})]


@pytest.fixture
async def stores(tmp_path: Path):
    store, audit, acting = (EventStore(tmp_path / "d.sqlite"), AuditLog(tmp_path / "d.sqlite"),
                            ActingStore(tmp_path / "a.sqlite"))
    for s in (store, audit, acting):
        await s.open()
    yield store, audit, acting
    for s in (store, audit, acting):
        await s.close()


async def test_a_new_revision_supersedes_a_deferred_decision_and_cancels_its_sync(stores: Any) -> None:
    store, audit, acting = stores
    deferred = _decision(DecisionState.DONE, Action.DEFER, ("schedule",), replicas=8, revision="abc1234")
    await store.accept(deferred.event, NOW)
    await store.save(deferred)
    await acting.schedule(deferred.event.event_id, "deferred_sync", NOW + timedelta(hours=3), {"application": "api"})
    submitted: list[Decision] = []

    async def submit(d: Decision) -> None:
        submitted.append(d)

    async def wait(event_id: str, timeout_s: float, until_verdict: bool = False) -> Decision | None:
        return await store.get(event_id)

    admission = Admission(store, FakeArgo("def5678", 8), audit, submit, wait, jobs=acting, wait_bound_s=1.0)
    n = deferred.event.notification.model_copy(update={"revision": "def5678"})
    event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n), received_at=NOW,
                       notification=n)
    new, duplicate = await store.accept(event, NOW)
    assert not duplicate  # another revision: not joined at intake
    await admission.submit(new)
    await admission.wait(event.event_id, 5.0)
    await admission.close()
    assert [d.event.event_id for d in submitted] == [event.event_id]
    old = await store.get(deferred.event.event_id)
    assert old is not None and old.state == DecisionState.SUPERSEDED and old.superseded_by == event.event_id
    assert await acting.pending() == []  # its deferred sync will not run
    [record] = await audit.records(deferred.event.event_id)
    assert record.kind == "supersede" and record.payload["deferred_sync_cancelled"] is True
    assert record.payload["revision"] == {"before": "abc1234", "after": "def5678"}
    # a scheduler job recorded late does not bring a superseded decision back
    await store.save(old.model_copy(update={"state": DecisionState.DONE}))
    assert (await store.get(deferred.event.event_id)).state == DecisionState.SUPERSEDED  # type: ignore[union-attr]
