"""Drift that stays: governed applications still OutOfSync are re-read, and a changed drift is a new event.

Argo CD's notification fires once per revision, so a drift that changes while the application stays
OutOfSync (someone edits the same object again, or another one) would go unnoticed. Every
`drift.reread_interval_s`, each application Driftwise has decided before and is not deciding or
acting on right now is read from the Argo CD API; when its drift (the digest of every changed path
and value) or its revision differs from the last decided one, it is a new event, which admission
(agents.drift.admission) decides and lets supersede the open decision it replaces. The same drift
(deferred, allowed, awaiting a human) is left alone. A decision whose wait for a human expired decided
nothing: while its application stays OutOfSync with a drift, that drift is a new event, changed or not
(agents.drift.approval_wait re-reads it at once on expiry; this tick is its retry).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.errors import DriftAgentError
from agents.drift.metrics import DriftMetrics
from agents.drift.observe import build_report
from agents.drift.open_rule import changes_digest, in_flight
from agents.drift.store import EventStore
from protocol.models import Decision, DecisionState, DriftEvent

log = logging.getLogger(__name__)

REREAD_EVENT = "on-drift-changed"
EXPIRED_EVENT = "on-approval-expired"


class Rereader:
    def __init__(self, store: EventStore, argocd: ArgoCDClient, submit: Callable[[Decision], Awaitable[None]],
                 metrics: DriftMetrics | None = None) -> None:
        self._store = store
        self._argocd = argocd
        self._submit = submit
        self._metrics = metrics

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.rereads.labels(outcome=outcome).inc()

    async def tick(self, now: datetime) -> list[str]:
        """Re-read every governed application once; returns the ids of the new events."""
        started: list[str] = []
        for last in await self._store.latest_per_application():
            if in_flight(last) or (last.report is None and last.state != DecisionState.EXPIRED):
                continue  # being decided or acted on now, or never observed: nothing to compare against
            event_id = await self.reread(last, now)
            if event_id is not None:
                started.append(event_id)
        return started

    async def reread(self, last: Decision, now: datetime) -> str | None:
        """Re-read the application of `last`, its newest decision; the id of the new event, if one was started."""
        try:
            return await self._check(last, now)
        except DriftAgentError as exc:
            log.warning("re-read of %s failed: %s", last.event.notification.app, exc)
            self._count("failed")
            return None

    async def _check(self, last: Decision, now: datetime) -> str | None:
        expired = last.state == DecisionState.EXPIRED
        n = last.event.notification
        app = await self._argocd.application(n.app, n.app_namespace)
        if (app.status.get("sync") or {}).get("status") != "OutOfSync":
            self._count("synced")
            return None
        resources = await self._argocd.managed_resources(n.app, n.app_namespace)
        probe = DriftEvent(event_id="reread", idempotency_key=last.event.idempotency_key, received_at=now,
                           notification=n)
        current = build_report(probe, app, None, resources, now)
        if not current.drifts:
            self._count("synced")
            return None
        if (not expired and last.report is not None and current.revision == last.report.revision
                and changes_digest(current) == changes_digest(last.report)):
            self._count("unchanged")
            return None
        notification = n.model_copy(update={"revision": app.revision or n.revision,
                                            "event": EXPIRED_EVENT if expired else REREAD_EVENT})
        event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(notification),
                           received_at=datetime.now(UTC), notification=notification)
        # never joined at intake: admission settles it (a changed drift supersedes the open decision; after an
        # expiry the same drift is decided anew)
        decision, _ = await self._store.accept(event, datetime.now(UTC), join=False)
        self._count("expired" if expired else "changed")
        log.info("drift of %s %s event %s: deciding it as %s", n.app,
                 "persists after the expiry of" if expired else "changed since", last.event.event_id, event.event_id)
        await self._submit(decision)
        return event.event_id
