"""Following each decided drift until it has an outcome (agents.drift.outcomes judges one read).

Every `drift.reread_interval_s`, beside the re-read of governed applications, each decision without an
outcome (OutcomeStore.followed) is looked at once, on Driftwise's clock:
- a human's answer is the outcome: approved (the action chosen) or rejected, with the comment;
- superseded, when the decision was, or a newer decision of the same application exists (a changed
  drift the re-read or a later notification decided anew);
- otherwise the application is read from Argo CD (once per application per tick): gone, reverted,
  adopted, or persisted at the horizon (agents.drift.outcomes).
Each outcome is judged against the decided action (agents.drift.agreement), kept once in the outcome
store, then written to the audit chain as an `outcome` record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.drift.agreement import agreement
from agents.drift.argocd_client import ArgoApplication, ArgoCDClient, ManagedResource
from agents.drift.audit import AuditLog
from agents.drift.errors import DriftAgentError, ObserveError
from agents.drift.metrics import DriftMetrics
from agents.drift.open_rule import changes_digest
from agents.drift.outcome_store import OutcomeStore
from agents.drift.outcomes import Horizon, Seen, by_window, horizon_for, seen
from agents.drift.store import EventStore
from agents.kit.diff import parse_time
from protocol.models import Decision, DecisionState, Outcome, OutcomeKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Read:
    app: ArgoApplication | None
    resources: list[ManagedResource]


class OutcomeTracker:
    def __init__(self, store: EventStore, outcomes: OutcomeStore, audit: AuditLog, argocd: ArgoCDClient,
                 clock: Callable[[], Awaitable[datetime]], *, horizon: timedelta, allow_ttl: timedelta,
                 metrics: DriftMetrics | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._outcomes = outcomes
        self._audit = audit
        self._argocd = argocd
        self._horizon = horizon
        self._allow_ttl = allow_ttl

    async def tick(self) -> list[Outcome]:
        """Look at every followed decision once; returns the outcomes recorded."""
        recorded: list[Outcome] = []
        reads: dict[str, Read | None] = {}
        newest: dict[str, list[Decision]] = {}
        for decision in await self._outcomes.followed():
            try:
                found = await self._judge(decision, reads, newest)
            except DriftAgentError as exc:
                log.warning("outcome of event %s not settled this time: %s", decision.event.event_id, exc)
                continue
            if found is not None and await self._keep(decision, found):
                recorded.append(found)
        return recorded

    async def _judge(self, decision: Decision, reads: dict[str, Read | None],
                     newest: dict[str, list[Decision]]) -> Outcome | None:
        assert decision.verdict is not None and decision.report is not None
        verdict = decision.verdict.verdict
        horizon = horizon_for(decision, self._horizon, self._allow_ttl)
        if decision.approval is not None and decision.approval.at is not None:
            a = decision.approval
            kind = OutcomeKind.APPROVED if a.decision == "approve" else OutcomeKind.REJECTED
            return self._outcome(decision, Seen(kind, a.at, a.approver, a.comment), horizon)
        successor = decision.superseded_by or await self._successor(decision, newest)
        now = await self._clock()  # after what was read: an outcome is never dated before it was seen
        if decision.state == DecisionState.SUPERSEDED or successor is not None:
            return self._outcome(decision, Seen(OutcomeKind.SUPERSEDED, max(now, verdict.decided_at),
                                                reason="the drift changed into another drift"),
                                 horizon, superseded_by=successor)
        n = decision.event.notification
        if n.app not in reads:
            reads[n.app] = await self._read(n.app, n.app_namespace)
            now = await self._clock()
        current = reads[n.app]
        if current is None:
            return self._outcome(decision, Seen(OutcomeKind.GONE, max(now, verdict.decided_at),
                                                reason=f"Argo CD no longer knows application {n.app}"), horizon)
        found = seen(decision, current.app, current.resources, now, horizon)
        if found is None:
            return None
        if found.kind == OutcomeKind.ADOPTED and current.app is not None:
            found = await self._author(decision, current.app, found)
        return self._outcome(decision, found, horizon, revision=current.app.revision if current.app else "")

    async def _successor(self, decision: Decision, newest: dict[str, list[Decision]]) -> str | None:
        """The first later decision of the same application, if any (a changed drift decided anew); the same drift
        decided again (after the wait for a human expired) is not another drift."""
        key = decision.event.idempotency_key
        if key not in newest:
            newest[key] = await self._store.for_application(key, limit=20)
        # only a decision that read a drift: an unknown-application answer is not another drift
        assert decision.report is not None
        again = changes_digest(decision.report) if decision.state == DecisionState.EXPIRED else None
        later = [d for d in newest[key] if d.event.received_at > decision.event.received_at
                 and d.event.event_id != decision.event.event_id and d.report is not None and d.report.drifts
                 and changes_digest(d.report) != again]
        return min(later, key=lambda d: d.event.received_at).event.event_id if later else None

    async def _read(self, name: str, app_namespace: str) -> Read | None:
        try:
            # the resources first: what changed them (a sync's operation state, a commit's revision) is on the
            # Application by the time they show it, so the later read of the Application names it
            resources = await self._argocd.managed_resources(name, app_namespace)
            app = await self._argocd.application(name, app_namespace)
        except ObserveError as exc:
            if exc.kind == "argocd_not_found":
                return None
            raise
        return Read(app, resources)

    async def _author(self, decision: Decision, app: ArgoApplication, found: Seen) -> Seen:
        """Who committed the revision that adopted the drift, and when, as Argo CD shows the commit."""
        n = decision.event.notification
        try:
            meta = await self._argocd.revision_metadata(n.app, app.revision, n.app_namespace)
        except ObserveError as exc:
            log.info("no commit metadata for %s@%s: %s", n.app, app.revision, exc)
            return found
        assert decision.verdict is not None
        at = found.at
        committed = parse_time(meta.date)
        # Git's commit date says when it was adopted (the tick may have started before the commit)
        if committed is not None and decision.verdict.verdict.decided_at <= committed:
            at = committed
        return Seen(found.kind, at, meta.author, f"{found.reason}: {meta.message}".strip(": ")[:4000])

    def _outcome(self, decision: Decision, found: Seen, horizon: Horizon, *, superseded_by: str | None = None,
                 revision: str = "") -> Outcome:
        assert decision.verdict is not None
        verdict = decision.verdict.verdict
        after = max(found.at - verdict.decided_at, timedelta(0))
        chosen = decision.approval.action if decision.approval is not None else None
        return Outcome(
            event_id=decision.event.event_id, kind=found.kind, action=verdict.action, mode=decision.mode,
            agreement=agreement(verdict.action, found.kind, after, by_window=by_window(decision, found.at, horizon),
                                chosen=chosen),
            decided_at=verdict.decided_at, at=found.at, after_s=after.total_seconds(), by=found.by[:200],
            reason=found.reason[:4000], revision=revision, superseded_by=superseded_by,
        )

    async def _keep(self, decision: Decision, outcome: Outcome) -> bool:
        if not await self._outcomes.record(decision.event.notification.app, outcome):
            return False  # another tick (or process) settled it first
        await self._audit.append(outcome.event_id, "outcome", outcome.model_dump(mode="json"))
        if self._metrics is not None:
            project = decision.report.project if decision.report is not None else decision.event.notification.project
            self._metrics.outcomes.labels(project=project, action=outcome.action.value, outcome=outcome.kind.value,
                                          agreement=outcome.agreement.value).inc()
        log.info("outcome of %s (%s, %s): %s by %s after %.0f s, %s", outcome.event_id,
                 decision.event.notification.app, outcome.action.value, outcome.kind.value, outcome.by or "?",
                 outcome.after_s, outcome.agreement.value)
        return True


async def with_outcomes(outcomes: OutcomeStore, decisions: list[Decision]) -> list[Decision]:
    """The decisions as the API shows them: each with its recorded outcome, if it has one."""
    found = await outcomes.get_many(d.event.event_id for d in decisions)
    return [d.model_copy(update={"outcome": found[d.event.event_id]}) if d.event.event_id in found else d
            for d in decisions]
