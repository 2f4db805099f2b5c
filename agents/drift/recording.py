"""Turning a decision's thread into its Decision document and its audit records — the one place that does.

The audit holds one `decision` record per decision, one `apply` per time the graph wrote (the approval
request's annotation before the thread waits, `request`; what it did after, `graph`), one
`approval` per human answer (agents.drift.runner), and one `apply`/`expiry` per job the scheduler ran.
Every append is keyed (`once`), so a decision recorded again after a crash appends nothing twice.
A decision is visible as final only after its audit records are written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.steps import DriftState
from agents.drift.store import EventStore
from protocol.models import (
    Action,
    AppliedAction,
    Decision,
    DecisionState,
    SignedVerdict,
    Verdict,
    VerdictReason,
)
from protocol.signing import Signer

log = logging.getLogger(__name__)


class AuditLike(Protocol):
    async def append(self, event_id: str, kind: Any, payload: dict[str, Any], *, once: str | None = None) -> Any:
        """None when `once` names a step already recorded (agents.drift.audit.AuditLog.append)."""

    async def records(self, event_id: str | None = None) -> list[Any]: ...


class JobLike(Protocol):
    event_id: str
    kind: str


OnWaiting = Callable[[Decision, datetime], Awaitable[None]]
"""Called with a decision about to be saved waiting for a human, and when on Driftwise's clock
(agents.drift.approval_wait.ApprovalWait.waiting: the bound on the wait and its messages)."""


class Failure(BaseModel):
    """Why a decision did not run its course: `kind` is a failure code (deadline, database_busy, an error kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    message: str


def report_digest(report: dict[str, Any] | None) -> str | None:
    """sha256 of the report's canonical JSON (sorted keys, no spaces): the audit's reference to it."""
    if report is None:
        return None
    return hashlib.sha256(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def final_state(verdict: Verdict) -> DecisionState:
    """For a decision outside the graph (no thread to resume): a verdict a human must confirm waits for one."""
    if verdict.requires_approval or verdict.action == Action.ESCALATE:
        return DecisionState.AWAITING_APPROVAL
    return DecisionState.DONE


def decision_state(state: DriftState, verdict: Verdict, interrupted: bool) -> DecisionState:
    if interrupted:
        return DecisionState.AWAITING_APPROVAL
    if state.apply_error is not None:
        return DecisionState.FAILED
    if state.acted or state.approval is not None:
        return DecisionState.DONE
    return final_state(verdict)


class Recorder:
    def __init__(self, config: DriftConfig, store: EventStore, audit: AuditLike, signer: Signer, clock: Clock,
                 metrics: DriftMetrics, on_waiting: OnWaiting | None = None) -> None:
        self._cfg = config
        self._on_waiting = on_waiting
        self._store = store
        self._audit = audit
        self._signer = signer
        self._clock = clock
        self._metrics = metrics
        # AuditLog appends on one connection must not interleave (each is a BEGIN IMMEDIATE transaction).
        self._audit_lock = asyncio.Lock()

    async def now(self) -> datetime:
        try:
            return await asyncio.wait_for(self._clock.now(), timeout=1.0)
        except Exception:  # the clock may be what failed; the system clock still stamps the record
            return datetime.now(UTC)

    async def append(self, event_id: str, kind: str, payload: dict[str, Any], once: str | None = None) -> bool:
        """Append an audit record; with `once`, only if no record of this kind carries that step yet (checked in
        the append's transaction: two replicas recording one decision append one record)."""
        async with self._audit_lock:
            return await self._audit.append(event_id, kind, payload, once=once) is not None

    async def fallback_verdict(self, event_id: str, state: DriftState | None, failure: Failure) -> SignedVerdict:
        """An escalation naming what happened; only ever before the guardrail gave its own verdict."""
        reasons = [VerdictReason(code=f"failure.{failure.kind}", message=failure.message, source="drift-agent")]
        for u in state.unreachable if state else []:
            reasons.append(VerdictReason(code="specialist.unreachable", message=f"{u.agent}: {u.reason}: {u.detail}",
                                         source="drift-agent"))
        for e in state.evidence if state else []:
            if e.error:
                reasons.append(VerdictReason(code="evidence.missing", source="drift-agent",
                                             message=f"{e.id} ({e.source}.{e.tool}): {e.error}"))
        verdict = Verdict(
            event_id=event_id, action=Action.ESCALATE, requires_approval=True,
            allowed_actions=[Action.ENFORCE, Action.DEFER, Action.ALLOW, Action.ESCALATE],
            confidence=0.0, threshold=self._cfg.confidence_threshold, reasons=reasons, decided_at=await self.now(),
        )
        return self._signer.sign_verdict(verdict, [self._cfg.agent_id])

    async def in_flight(self, decision: Decision, why: str) -> Decision:
        """The recorded verdict stands and its action was intended: the record says so until Argo CD's answer
        ends it."""
        update = decision.model_copy(update={"state": DecisionState.APPLYING, "error": why,
                                              "updated_at": datetime.now(UTC)})
        await self._store.save(update)
        return update

    async def record(self, decision: Decision, state: DriftState, failure: Failure | None, elapsed_ms: float,
                     interrupted: bool, verdict_ms: float | None = None) -> Decision:
        event = decision.event
        signed = state.verdict
        if signed is None:
            raise ValueError(f"decision {event.event_id}: a thread without a verdict cannot be recorded")
        resumed = decision.approval is not None
        timings = {**decision.timings_ms, **state.timings_ms}
        timings["apply" if resumed else "decision"] = round(elapsed_ms, 2)
        if verdict_ms is not None:
            timings["webhook_to_verdict"] = verdict_ms
        if not resumed:
            timings["webhook_to_final"] = round((datetime.now(UTC) - event.received_at).total_seconds() * 1000, 2)
        report = state.report
        report_json = report.model_dump(mode="json") if report else None
        status = decision_state(state, signed.verdict, interrupted)
        error = failure.message if failure else None
        if state.apply_error is not None:
            error = f"apply: {state.apply_error}"
        mode = state.mode or self._cfg.mode_for(report.project if report else event.notification.project)
        final = decision.model_copy(update={
            "state": status, "mode": mode, "report": report, "evidence": state.evidence,
            "recommendations": state.answers, "proposal": state.signed_proposal, "verdict": signed,
            "approval": state.approval or decision.approval, "applied": state.applied,
            "backport_patch": state.backport_patch or decision.backport_patch, "llm": state.llm,
            "timings_ms": timings, "error": error, "updated_at": datetime.now(UTC),
        })
        payload = {
            "event": event.model_dump(mode="json"),
            "report_digest": report_digest(report_json),
            "evidence": [e.model_dump(mode="json") for e in state.evidence],
            "recommendations": [a.model_dump(mode="json") for a in state.answers],
            "unreachable": [u.model_dump(mode="json") for u in state.unreachable],
            "proposal": state.signed_proposal.model_dump(mode="json") if state.signed_proposal else None,
            "opa_input": state.opa_input,
            "opa_result": state.opa_result,
            "verdict": signed.model_dump(mode="json"),
            "state": status.value,
            "mode": mode,
            "failure": failure.model_dump() if failure and not resumed else None,
            "llm": state.llm.model_dump(mode="json") if state.llm else None,  # the model's own answer, or why not
            "timings_ms": timings,
            "replica": self._cfg.replica_id,  # who recorded it: the replica holding its lease
        }
        # The audit records first: a decision visible as final always has its audit records.
        first = await self.append(event.event_id, "decision", payload, once="decided")
        acted = state.acted and bool(state.applied) and not interrupted
        # the approval request's writes (its status annotation) are made before the thread waits: audited
        # then, once (`request`); the graph's own `apply` later lists only what came after them
        requested = await self._audited(event.event_id, "request")
        if interrupted and len(state.applied) > requested:
            await self._audit_apply(event.event_id, "request", mode, state, state.applied[requested:])
        if acted and len(state.applied) > requested:
            await self._audit_apply(event.event_id, "graph", mode, state, state.applied[requested:])
        if status == DecisionState.AWAITING_APPROVAL and self._on_waiting is not None:
            await self._on_waiting(final, await self.now())  # its bound and messages are durable before it waits
        await self._store.save(final)
        if first:
            self._metrics.decisions.labels(action=signed.verdict.action.value, mode=mode).inc()
            if "webhook_to_final" in timings:
                self._metrics.latency.observe(timings["webhook_to_final"] / 1000)
        if state.apply_error is not None and not resumed:
            self._metrics.failures.labels(kind="apply").inc()
        log.info("decision %s %s: %s (%s%s) in %.0f ms", event.event_id, event.idempotency_key,
                 signed.verdict.action.value, final.state.value, f", {mode}" if acted else "", elapsed_ms)
        return final

    async def approval(self, decision: Decision) -> None:
        """The human's answer a decision carries (taken by the runner's resume), audited once: appended as
        its thread resumes, so that a crash between taking the answer and acting on it loses no record."""
        if decision.approval is None or decision.verdict is None:
            return
        verdict = decision.verdict.verdict
        await self.append(decision.event.event_id, "approval", {
            "approval": decision.approval.model_dump(mode="json"), "proposed": verdict.action.value,
            "allowed_actions": [a.value for a in verdict.allowed_actions], "verdict_jws": decision.verdict.jws,
        }, once="answer")

    async def _audited(self, event_id: str, step: str) -> int:
        """How many actions the `apply` record of this step lists (0 when there is none yet)."""
        async with self._audit_lock:
            records = await self._audit.records(event_id)
        return sum(len(r.payload.get("applied") or []) for r in records
                   if r.kind == "apply" and r.payload.get("step") == step)

    async def _audit_apply(self, event_id: str, step: str, mode: str, state: DriftState,
                           actions: list[AppliedAction]) -> None:
        wrote = await self.append(event_id, "apply", {
            "mode": mode, "applied": [a.model_dump(mode="json") for a in actions],
            "approval": state.approval.model_dump(mode="json") if state.approval else None,
            "backport_patch": state.backport_patch,
            "error": str(state.apply_error) if state.apply_error else None,
        }, once=step)
        for a in actions if wrote else []:
            self._metrics.applied.labels(kind=a.kind, mode=a.mode, executed=str(a.executed).lower()).inc()

    async def record_job(self, job: JobLike, action: AppliedAction) -> None:
        """A deferred sync or an allowance expiry ran on the scheduler: audit it and add it to the Decision."""
        kind = "expiry" if job.kind == "expire_allowance" else "apply"
        await self.append(job.event_id, kind, {"job": job.kind, "applied": [action.model_dump(mode="json")]})
        self._metrics.applied.labels(kind=action.kind, mode=action.mode, executed=str(action.executed).lower()).inc()
        decision = await self._store.get(job.event_id)
        if decision is not None:
            await self._store.save(decision.model_copy(update={
                "applied": [*decision.applied, action], "updated_at": datetime.now(UTC)}))
