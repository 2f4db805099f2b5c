"""A stand-in of Argo CD's application reads for the re-read tests (the Argo CD API cannot run here)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.store import EventStore
from protocol.models import (
    ArgoNotification,
    DecisionState,
    DriftEvent,
    DriftReport,
    FieldChange,
    ResourceDrift,
    ResourceRef,
)

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
REF = ResourceRef(group="apps", kind="Deployment", namespace="shop", name="api")


def drift_report(event_id: str, replicas: int, revision: str = "abc") -> DriftReport:
    """Application `api` in namespace shop whose Deployment's replicas drifted from 3 to `replicas`."""
    change = FieldChange(path="/spec/replicas", op="replace", before=3, after=replicas)
    return DriftReport(event_id=event_id, application="api", project="prod", revision=revision,
                       destination_namespace="shop", drifts=[ResourceDrift(ref=REF, changes=[change])], observed_at=NOW)


@asynccontextmanager
async def decided_store(path: Path) -> AsyncIterator[EventStore]:
    """An event store holding one done decision of application `api` whose drift is replicas 3 -> 8."""
    s = EventStore(path)
    await s.open()
    try:
        n = ArgoNotification(app="api", project="prod")
        event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n), received_at=NOW,
                           notification=n)
        decision, _ = await s.accept(event, NOW)
        await s.save(decision.model_copy(update={"state": DecisionState.DONE,
                                                 "report": drift_report(event.event_id, 8)}))
        yield s
    finally:
        await s.close()


class FakeArgo:
    def __init__(self, replicas: int, sync: str = "OutOfSync") -> None:
        self.replicas = replicas
        self.sync = sync
        self.revision = "abc"

    async def application(self, name: str, app_namespace: str | None = None) -> ArgoApplication:
        return ArgoApplication.model_validate({
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "prod", "destination": {"namespace": "shop"}},
            "status": {"sync": {"status": self.sync, "revision": self.revision},
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
