"""Approvals nobody answers: a decision waits for a human at most `drift.approval_timeout_h`.

When a decision is about to be seen waiting (agents.drift.recording, before it is saved so), `waiting`
schedules its jobs in the jobs table, on Driftwise's clock (the sandbox's in evaluation): the message
(`notify_approval`, at once) and its reminder (`remind_approval`, at half the wait) when notify.webhook_url
is set (agents.drift.notify sends them), and the end of the wait (`expire_approval`). Each is once per
decision, so recording it again after a crash schedules nothing twice.

At the end of the wait (`run_due`, on the scheduler's tick) a decision still waiting ends `expired`:
nothing is done, the audit gets an `expiry` record naming the reason, and its application is re-read at
once; a drift that persists is decided again as a new event (agents.drift.reread, which also retries that
re-read on its own tick if Argo CD cannot be read now).

A decision is final once: the expiry and a human's answer both leave `awaiting_approval` through the one
conditional write (EventStore.transition), so of an approval racing the expiry exactly one takes effect;
the other finds the decision moved (an approval then answers 409 naming the expiry).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from agents.drift.acting.store import ActingStore, Job, JobKind
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import Decision, DecisionState

log = logging.getLogger(__name__)

EXPIRY_JOBS: tuple[JobKind, ...] = ("expire_approval",)
EXPIRY_STEP = "approval_expired"
"""The `step` of a decision's one `expiry` audit record of its wait (an allowance's expiry has none)."""

Reread = Callable[[Decision, datetime], Awaitable[str | None]]
"""agents.drift.reread.Rereader.reread: the new event's id when the drift persists."""


class WaitPayload(BaseModel):
    """What a wait's jobs carry: when the wait began and when it ends (the messages say so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    since: datetime
    expires_at: datetime


class Auditor(Protocol):
    async def append(self, event_id: str, kind: Any, payload: dict[str, Any]) -> Any: ...

    async def records(self, event_id: str | None = None) -> list[Any]: ...


class ApprovalWait:
    def __init__(self, store: EventStore, jobs: ActingStore, audit: Auditor, timeout: timedelta, *, notify: bool,
                 metrics: DriftMetrics) -> None:
        self._store = store
        self._jobs = jobs
        self._audit = audit
        self._timeout = timeout
        self._notify = notify
        self._metrics = metrics

    async def waiting(self, decision: Decision, at: datetime) -> None:
        """Schedule the jobs of a decision that starts waiting for a human at `at` (Driftwise's clock)."""
        payload = WaitPayload(since=at, expires_at=at + self._timeout).model_dump(mode="json")
        event_id = decision.event.event_id
        if self._notify:
            await self._jobs.schedule(event_id, "notify_approval", at, payload)
            await self._jobs.schedule(event_id, "remind_approval", at + self._timeout / 2, payload)
        await self._jobs.schedule(event_id, "expire_approval", at + self._timeout, payload)

    async def adopt(self, now: datetime) -> int:
        """At start-up: bound the wait of decisions that began waiting before this bound existed (an upgrade),
        counted from `now` rather than from their verdict, so that an upgrade does not expire them all at once;
        how many there were."""
        found = await self._store.awaiting_without("expire_approval")
        for decision in found:
            await self.waiting(decision, now)
        return len(found)

    async def run_due(self, now: datetime, reread: Reread | None) -> list[str]:
        """End every wait that is due; the ids of the decisions that expired."""
        expired: list[str] = []
        for job in await self._jobs.due(now, kinds=EXPIRY_JOBS):
            ended = await self.expire(job, now)
            if ended is not None:
                expired.append(ended.event.event_id)
                if reread is not None:
                    await reread(ended, now)
            await self._jobs.finish(job.id, ok=True, error=None if ended is not None else "answered before")
        return expired

    async def expire(self, job: Job, now: datetime) -> Decision | None:
        """End the wait of the job's decision if nobody answered it; the expired decision, or None when it
        was answered (or superseded) first. Run again after a crash, it completes the audit record."""
        decision = await self._store.get(job.event_id)
        if decision is None:
            return None  # pruned
        if decision.state == DecisionState.AWAITING_APPROVAL:
            wait = WaitPayload.model_validate(job.payload)
            ended = decision.model_copy(update={"state": DecisionState.EXPIRED, "expired_at": now,
                                                "updated_at": datetime.now(UTC)})
            if await self._store.transition(ended, DecisionState.AWAITING_APPROVAL) is None:
                log.info("decision %s was answered as its wait ended: the answer stands", job.event_id)
                return None
            self._metrics.approvals_expired.inc()
            log.info("decision %s expired: nobody answered it within drift.approval_timeout_h=%g (waiting since "
                     "%s)", job.event_id, self._timeout / timedelta(hours=1), wait.since.isoformat())
            decision = ended
        if decision.state != DecisionState.EXPIRED:
            return None
        await self._audit_once(decision, WaitPayload.model_validate(job.payload))
        return decision

    async def _audit_once(self, decision: Decision, wait: WaitPayload) -> None:
        event_id = decision.event.event_id
        records = await self._audit.records(event_id)
        if any(r.kind == "expiry" and r.payload.get("step") == EXPIRY_STEP for r in records):
            return
        await self._audit.append(event_id, "expiry", {
            "step": EXPIRY_STEP, "state": DecisionState.EXPIRED.value, "previous_state": "awaiting_approval",
            "reason": f"nobody answered within drift.approval_timeout_h={self._timeout / timedelta(hours=1):g}: "
                      "nothing was done; a drift that persists is decided again as a new event",
            "waiting_since": wait.since.isoformat(), "expired_at": (decision.expired_at or wait.expires_at).isoformat(),
            "proposed": decision.verdict.verdict.action.value if decision.verdict else None,
            "verdict_jws": decision.verdict.jws if decision.verdict else None,
        })


__all__ = ["EXPIRY_JOBS", "ApprovalWait", "WaitPayload"]
