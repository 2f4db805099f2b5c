"""Drift that stays: a governed application still OutOfSync is re-decided only when its drift changed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.reread import REREAD_EVENT, Rereader, changes_digest
from agents.drift.store import EventStore
from protocol.models import (
    ArgoNotification,
    Decision,
    DecisionState,
    DriftEvent,
    DriftReport,
    FieldChange,
    ResourceDrift,
    ResourceRef,
)

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
REF = ResourceRef(group="apps", kind="Deployment", namespace="shop", name="api")


def _report(event_id: str, replicas: int) -> DriftReport:
    change = FieldChange(path="/spec/replicas", op="replace", before=3, after=replicas)
    return DriftReport(event_id=event_id, application="api", project="prod", destination_namespace="shop",
                       drifts=[ResourceDrift(ref=REF, changes=[change])], observed_at=NOW)


class FakeArgo:
    def __init__(self, replicas: int, sync: str = "OutOfSync") -> None:
        self.replicas = replicas
        self.sync = sync

    async def application(self, name: str, app_namespace: str | None = None) -> ArgoApplication:
        return ArgoApplication.model_validate({
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "prod", "destination": {"namespace": "shop"}},
            "status": {"sync": {"status": self.sync, "revision": "abc"},
                       "resources": [{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "api",
                                      "status": self.sync}]},
        })

    async def managed_resources(self, name: str, app_namespace: str | None = None) -> list[ManagedResource]:
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}
        target = {**obj, "spec": {"replicas": 3}}
        live = {**obj, "spec": {"replicas": self.replicas}}
        return [ManagedResource.model_validate({"group": "apps", "kind": "Deployment", "namespace": "shop",
                                                "name": "api", "targetState": json.dumps(target),
                                                "liveState": json.dumps(live)})]


@pytest.fixture
async def store(tmp_path: Path):
    s = EventStore(tmp_path / "drift.sqlite")
    await s.open()
    n = ArgoNotification(app="api", project="prod")
    event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n), received_at=NOW,
                       notification=n)
    decision, _ = await s.accept(event, NOW)
    await s.save(decision.model_copy(update={"state": DecisionState.DONE, "report": _report(event.event_id, 8)}))
    yield s
    await s.close()


def test_digest_ignores_when_and_names_what() -> None:
    a, b = _report("e1", 8), _report("e2", 8).model_copy(update={"observed_at": datetime(2027, 1, 1, tzinfo=UTC)})
    assert changes_digest(a) == changes_digest(b)
    assert changes_digest(a) != changes_digest(_report("e3", 9))


async def test_same_drift_is_left_alone_and_a_changed_one_is_a_new_event(store: EventStore) -> None:
    submitted: list[Decision] = []

    async def submit(decision: Decision) -> None:
        submitted.append(decision)

    assert await Rereader(store, FakeArgo(8), submit).tick(NOW) == []  # type: ignore[arg-type]
    assert await Rereader(store, FakeArgo(9, sync="Synced"), submit).tick(NOW) == []  # type: ignore[arg-type]
    new = await Rereader(store, FakeArgo(9), submit).tick(NOW)  # type: ignore[arg-type]
    assert len(new) == 1 and [d.event.event_id for d in submitted] == new
    assert submitted[0].event.notification.event == REREAD_EVENT
    # the new event is open: the next tick does not start another one for the same application
    assert await Rereader(store, FakeArgo(10), submit).tick(NOW) == []  # type: ignore[arg-type]
