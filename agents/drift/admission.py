"""Admission: a new event is settled against its application's earlier decisions before it is decided.

Every new event (webhook, A2A, re-read, or one a crash left `received`) comes here instead of going
straight to the runner. Admission waits for any earlier decision of the same application that is in
flight, reads the drift from the Argo CD API, then applies agents.drift.open_rule:
- the same revision and drift as the latest observed decision: the event joins that decision
  (store.join; `GET /v1/decisions/<event>` answers with it) and nothing new is decided;
- changed while the latest is open: that one ends `superseded` (audited; its approval is withdrawn,
  approving it answers 409 naming the successor; its deferred sync is cancelled), the event is decided;
- an application Argo CD does not know: the event ends `unknown_application` (audited), nothing to approve;
  a retry of it (same revision, still unknown) joins that decision;
- otherwise the event is decided (runner.submit).
If Argo CD cannot be read for another reason the event is decided anyway: observe meets the same
failure and the decision escalates, naming it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from agents.drift.argocd_client import ArgoApplication, ManagedResource
from agents.drift.errors import LeaseLost, ObserveError
from agents.drift.leases import LeaseKeeper
from agents.drift.observe import build_report
from agents.drift.open_rule import Outcome, Ruling, changes_digest, in_flight, rule
from agents.drift.store import EventStore
from protocol.models import Approval, Decision, DecisionState

log = logging.getLogger(__name__)

NOT_FOUND = "argocd_not_found"


class ArgoReader(Protocol):
    """The reads of agents.drift.argocd_client.ArgoCDClient that admission uses."""

    async def application(self, name: str, app_namespace: str | None = None) -> ArgoApplication: ...

    async def managed_resources(self, name: str, app_namespace: str | None = None) -> list[ManagedResource]: ...


class JobCanceller(Protocol):
    async def cancel(self, event_id: str, kind: Any, reason: str) -> bool: ...


class Auditor(Protocol):
    async def append(self, event_id: str, kind: Any, payload: dict[str, Any], *, once: str | None = None) -> Any: ...

    async def records(self, event_id: str | None = None) -> list[Any]: ...


Submit = Callable[[Decision], Awaitable[None]]
Resume = Callable[[str, Approval], Awaitable[Decision]]
Wait = Callable[..., Awaitable[Decision | None]]
"""DecisionRunner.wait(event_id, timeout_s, until_verdict=...)."""


class Admission:
    def __init__(self, store: EventStore, argocd: ArgoReader, audit: Auditor, submit: Submit, wait: Wait, *,
                 jobs: JobCanceller | None, wait_bound_s: float, leases: LeaseKeeper | None = None) -> None:
        self._store = store
        self._leases = leases
        self._argocd = argocd
        self._audit = audit
        self._submit = submit
        self._wait = wait
        self._jobs = jobs
        self._wait_bound_s = wait_bound_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, idempotency_key: str) -> asyncio.Lock:
        """Held while an application's decision is superseded, and by an approval of it (agents.drift.app):
        one of the two wins, never both."""
        return self._locks.setdefault(idempotency_key, asyncio.Lock())

    def guarded(self, resume: Resume) -> Resume:
        """`resume` (DecisionRunner.resume with its timeout) under the application's lock, so that a human's
        answer and a supersede of the same decision never interleave."""
        async def answer(event_id: str, approval: Approval) -> Decision:
            decision = await self._store.get(event_id)
            if decision is None:
                return await resume(event_id, approval)  # the runner answers 404 for it
            async with self.lock(decision.event.idempotency_key):
                return await resume(event_id, approval)

        return answer

    async def submit(self, decision: Decision) -> None:
        """Admit a new (`received`) event in the background; anything further along goes to the runner."""
        event_id = decision.event.event_id
        if decision.state != DecisionState.RECEIVED:
            await self._submit(decision)
            return
        if event_id in self._tasks:
            return
        # admitted under the event's lease (handed on to the runner when it is decided): one replica admits it
        if self._leases is not None:
            if not await self._leases.take(event_id):
                return
            if event_id in self._tasks:
                await self._leases.release(event_id)
                return
        task = asyncio.create_task(self._admit(decision), name=f"admit-{event_id}")
        self._tasks[event_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(event_id, None))

    async def wait(self, event_id: str, timeout_s: float, until_verdict: bool = False) -> Decision | None:
        """Like the runner's wait, admission included: the decision the event is (its own or the one joined)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        task = self._tasks.get(event_id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout_s)
        decision = await self._store.get(event_id)
        if decision is None or decision.final:
            return decision
        # the event's own decision, or the one it joined (its id is the decision's)
        return await self._wait(decision.event.event_id, max(deadline - loop.time(), 0.0),
                                until_verdict=until_verdict)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one event ------------------------------------------------------------------------------

    async def _admit(self, decision: Decision) -> None:
        try:
            fresh = await self._store.get(decision.event.event_id) if self._leases is not None else decision
            if fresh is None or fresh.event.event_id != decision.event.event_id:
                return  # joined another decision, before this replica took its lease
            if fresh.state != DecisionState.RECEIVED:
                await self._submit(fresh)  # admitted meanwhile, by the replica that held it before
                return
            try:
                decided = await self._settle(decision)
            except asyncio.CancelledError:
                raise
            except LeaseLost as exc:
                log.warning("admission of %s stopped: %s", decision.event.event_id, exc)
                return
            except Exception:  # a background task's edge: the event is still decided, never dropped
                log.exception("admission of %s failed; deciding it as it is", decision.event.event_id)
                decided = True
            if decided:
                await self._submit(decision)
        finally:
            if self._leases is not None:
                await self._leases.release(decision.event.event_id)

    async def _settle(self, decision: Decision) -> bool:
        """Apply the open-decision rule; True when the event is to be decided."""
        await self._wait_for_earlier(decision)
        n = decision.event.notification
        try:
            app, resources = await asyncio.gather(self._argocd.application(n.app, n.app_namespace),
                                                  self._argocd.managed_resources(n.app, n.app_namespace))
        except ObserveError as exc:
            if exc.kind == NOT_FOUND:
                earlier = await self._unknown_before(decision)
                if earlier is not None and await self._store.join(decision.event.event_id, earlier,
                                                                  datetime.now(UTC)):
                    return False  # a retry: the application is still unknown, as that decision says
                await self._unknown_application(decision, str(exc))
                return False
            log.warning("admission of %s could not read Argo CD (%s): deciding it", decision.event.event_id, exc)
            return True
        now = datetime.now(UTC)
        report = build_report(decision.event, app, None, resources, now)
        async with self.lock(decision.event.idempotency_key):
            outcome = rule(report.revision, changes_digest(report), await self._latest_observed(decision))
            return await self._carry_out(decision, outcome, report.revision, now)

    async def _carry_out(self, decision: Decision, outcome: Outcome, revision: str, now: datetime) -> bool:
        event_id = decision.event.event_id
        other = outcome.other
        if outcome.ruling == Ruling.JOIN and other is not None:
            if await self._store.join(event_id, other.event.event_id, now):
                log.info("event %s joins decision %s (same revision and drift)", event_id, other.event.event_id)
                return False
            return True  # no longer `received` (a concurrent path took it): decide it as it is
        if outcome.ruling == Ruling.SUPERSEDE and other is not None:
            await self._supersede(other, decision, revision, now)
        return True

    async def _supersede(self, old: Decision, new: Decision, revision: str, now: datetime) -> None:
        old_id, new_id = old.event.event_id, new.event.event_id
        if in_flight(old):
            return  # never: it is acted on right now (the caller waited; it started again meanwhile)
        cancelled = False
        if self._jobs is not None:
            cancelled = await self._jobs.cancel(old_id, "deferred_sync", f"superseded by event {new_id}")
        # the audit record first: a decision visible as superseded always has its record
        await self._audit.append(old_id, "supersede", {
            "superseded_by": new_id, "previous_state": old.state.value,
            "revision": {"before": old.report.revision if old.report else None, "after": revision},
            "approval_withdrawn": old.state == DecisionState.AWAITING_APPROVAL,
            "deferred_sync_cancelled": cancelled,
        })
        if await self._store.supersede(old, new_id, now) is None:
            log.warning("decision %s changed while being superseded by %s: left as it is", old_id, new_id)
            return
        log.info("decision %s (%s) superseded by %s", old_id, old.state.value, new_id)

    async def _unknown_application(self, decision: Decision, reason: str) -> None:
        event_id = decision.event.event_id
        n = decision.event.notification
        message = (f"Argo CD does not know application {n.app!r} in namespace {n.app_namespace!r} ({reason}): "
                   "nothing to decide")
        # keyed like the runner's decision record ("step": "decided"): a replay after a crash appends none
        await self._audit.append(event_id, "decision", {
            "event": decision.event.model_dump(mode="json"), "state": DecisionState.UNKNOWN_APPLICATION.value,
            "failure": {"kind": NOT_FOUND, "message": message}, "verdict": None,
        }, once="decided")
        await self._store.save(decision.model_copy(update={
            "state": DecisionState.UNKNOWN_APPLICATION, "error": message, "updated_at": datetime.now(UTC)}))
        log.info("event %s: %s", event_id, message)

    async def _wait_for_earlier(self, decision: Decision) -> None:
        """Wait (bounded) for every earlier decision of the application that is being decided or acted on."""
        mine = (decision.event.received_at, decision.event.event_id)
        for _ in range(3):
            running = [d for d in await self._store.for_application(decision.event.idempotency_key)
                       if in_flight(d) and (d.event.received_at, d.event.event_id) < mine]
            if not running:
                return
            for d in running:
                await self.wait(d.event.event_id, self._wait_bound_s)

    async def _unknown_before(self, decision: Decision) -> str | None:
        """The event id of an earlier `unknown_application` decision of the same application and revision."""
        for d in await self._store.for_application(decision.event.idempotency_key):
            if (d.state == DecisionState.UNKNOWN_APPLICATION and d.event.event_id != decision.event.event_id
                    and d.event.notification.revision == decision.event.notification.revision):
                return d.event.event_id
        return None

    async def _latest_observed(self, decision: Decision) -> Decision | None:
        """The application's newest decision with a drift report, other than this event's, not superseded."""
        for d in await self._store.for_application(decision.event.idempotency_key):
            if d.event.event_id == decision.event.event_id or d.state == DecisionState.SUPERSEDED:
                continue
            if d.report is not None:
                return d
        return None
