"""Runs decisions: background tasks with bounded concurrency, a deadline per decision, crash recovery.

Whatever happens inside the graph (a backend down, a peer gone, OPA failing, the deadline), a
decision ends with a signed verdict, a persisted Decision and exactly one `decision` audit record;
the fallback verdict is an escalation whose reasons say what happened, and it goes through the
graph's approval step like any other escalation (so a human can approve it).

States: received -> deciding -> awaiting_approval (thread interrupted) | done | failed (apply failed);
an approval moves awaiting_approval -> applying -> done | failed. Audit: `decision` once per event,
`approval` per human answer, `apply` once the graph acted (and per deferred sync), `expiry` when an
allowance ends. Every append is keyed so that a decision replayed after a crash appends nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from opentelemetry import trace

from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.errors import DriftAgentError, StoreError
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import (
    Action,
    AppliedAction,
    Approval,
    Decision,
    DecisionState,
    DriftReport,
    Evidence,
    LlmUsage,
    SignedRecommendation,
    SignedVerdict,
    Verdict,
    VerdictReason,
)
from protocol.signing import Signer

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("driftwise.drift")


class AuditLike(Protocol):
    async def append(self, event_id: str, kind: str, payload: dict[str, Any]) -> Any: ...

    async def records(self, event_id: str | None = None) -> list[Any]: ...


class ApprovalConflict(DriftAgentError):
    """An approval that cannot be taken: no such decision, not awaiting one, or an action not allowed."""

    kind = "approval_conflict"

    def __init__(self, message: str, status: int = 409, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = allowed or []


class JobLike(Protocol):
    event_id: str
    kind: str


def report_digest(report: dict[str, Any] | None) -> str | None:
    if report is None:
        return None
    return hashlib.sha256(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# A step's checkpoint is written while the next step runs: a crash can lose the newest one, and that
# step then runs again on resume, which every node tolerates (reads, signing, the outbox-guarded apply).
_DURABILITY = "async"


def final_state(verdict: Verdict) -> DecisionState:
    """For a decision outside the graph (no thread to resume): a verdict a human must confirm waits for one."""
    if verdict.requires_approval or verdict.action == Action.ESCALATE:
        return DecisionState.AWAITING_APPROVAL
    return DecisionState.DONE


def _interrupted(snapshot: Any) -> bool:
    return bool(snapshot.next) and any(getattr(t, "interrupts", ()) for t in snapshot.tasks)


def _ended(snapshot: Any) -> bool:
    """The thread reached END. Not just "no `next`": a live snapshot drops the tasks whose writes are saved,
    so a step that finished while its checkpoint was lost (a crash with durability="async") shows no `next`
    either, yet lists its tasks, and the steps after it (guardrail -> apply) have not run."""
    return not snapshot.next and not snapshot.tasks


class ThreadUnsettled(StoreError):
    """The graph thread is neither at its end nor waiting for a human: the decision must not be recorded yet.

    A StoreError so that `_run` runs the decision again from its checkpoint; after that it stays open and
    is resumed on the next start, never recorded as final from a partial state."""


class DecisionRunner:
    def __init__(
        self,
        config: DriftConfig,
        graph: CompiledStateGraph,
        store: EventStore,
        audit: AuditLike,
        signer: Signer,
        clock: Clock,
        metrics: DriftMetrics,
    ) -> None:
        self._cfg = config
        self._graph = graph
        self._store = store
        self._audit = audit
        self._signer = signer
        self._clock = clock
        self._metrics = metrics
        self._sem = asyncio.Semaphore(config.max_concurrent_decisions)
        self._tasks: dict[str, asyncio.Task[Decision]] = {}
        self._done: dict[str, asyncio.Event] = {}
        # set once the guardrail's verdict is recorded (before acting on it), and when the decision ends
        self._verdicts: dict[str, asyncio.Event] = {}
        self._verdict_ms: dict[str, float] = {}
        # AuditLog appends on one connection must not interleave (each is a BEGIN IMMEDIATE transaction).
        self._audit_lock = asyncio.Lock()
        self._approval_locks: dict[str, asyncio.Lock] = {}

    async def submit(self, decision: Decision) -> None:
        event_id = decision.event.event_id
        if event_id in self._tasks:
            return
        self._done.setdefault(event_id, asyncio.Event())
        self._verdicts.setdefault(event_id, asyncio.Event())
        task = asyncio.create_task(self._run(decision), name=f"decision-{event_id}")
        self._tasks[event_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(event_id, None))

    async def wait(self, event_id: str, timeout_s: float, *, until_verdict: bool = False) -> Decision | None:
        """The decision once final, or with `until_verdict` once its verdict is recorded (before it is acted
        on); its current state after `timeout_s`. None if there is no such event."""
        done = (self._verdicts if until_verdict else self._done).get(event_id)
        if done is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await done.wait()
            except TimeoutError:
                pass
        return await self._store.get(event_id)

    async def resume_undecided(self) -> int:
        """Crash recovery: every event persisted but not decided is run again (from its checkpoint)."""
        pending = await self._store.undecided()
        for decision in pending:
            log.info("resuming undecided event %s (%s)", decision.event.event_id, decision.event.idempotency_key)
            await self.submit(decision)
        return len(pending)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one decision ---------------------------------------------------------------------------

    async def _run(self, decision: Decision) -> Decision:
        event_id = decision.event.event_id
        try:
            async with self._sem:
                for attempt in range(3):
                    try:
                        # a first attempt at an event never started has no thread yet: nothing to look up
                        fresh = attempt == 0 and decision.state == DecisionState.RECEIVED
                        return await self._decide(decision, fresh=fresh)
                    except (sqlite3.OperationalError, StoreError) as exc:
                        # a busy database under a burst, or a thread a crash left between steps: every step is
                        # replay-safe (checkpoints, keyed audit appends, the outbox), so the decision is simply
                        # run again from where it stopped
                        if attempt == 2:
                            raise
                        log.warning("decision %s: %s; running it again", event_id, exc)
                        await asyncio.sleep(0.5 * (attempt + 1))
                        fresh = await self._store.get(event_id)
                        if fresh is not None and fresh.final:
                            return fresh  # recorded (with its audit records) before the error
                        decision = fresh or decision
                raise AssertionError("unreachable")
        except asyncio.CancelledError:
            raise
        except Exception:  # the last line of defence of a background task: never lose the event silently
            log.exception("decision %s could not be recorded", event_id)
            raise
        finally:
            self._verdict_ms.pop(event_id, None)
            for events in (self._verdicts, self._done):
                done = events.pop(event_id, None)
                if done is not None:
                    done.set()

    async def resume(self, event_id: str, approval: Approval, timeout_s: float) -> Decision:
        """A human's answer: recorded in the audit chain, then the interrupted thread resumes with it."""
        lock = self._approval_locks.setdefault(event_id, asyncio.Lock())
        async with lock:
            decision = await self._store.get(event_id)
            if decision is None:
                raise ApprovalConflict(f"no decision for event {event_id}", status=404)
            if decision.state != DecisionState.AWAITING_APPROVAL or decision.verdict is None:
                raise ApprovalConflict(f"decision {event_id} is {decision.state.value}, not awaiting_approval")
            verdict = decision.verdict.verdict
            allowed = [a.value for a in verdict.allowed_actions]
            if approval.decision == "approve":
                chosen = approval.action or verdict.action
                if chosen not in verdict.allowed_actions:
                    raise ApprovalConflict(f"action {chosen.value!r} is not allowed for {event_id}: choose one of "
                                           f"{', '.join(allowed)}", allowed=allowed)
                approval = approval.model_copy(update={"action": chosen})
            if approval.at is None:
                approval = approval.model_copy(update={"at": await self._now()})
            await self._append(event_id, "approval", {
                "approval": approval.model_dump(mode="json"), "proposed": verdict.action.value,
                "allowed_actions": allowed, "verdict_jws": decision.verdict.jws,
            })
            decision = decision.model_copy(update={"approval": approval, "state": DecisionState.APPLYING,
                                                   "updated_at": datetime.now(UTC)})
            await self._store.save(decision)
            await self.submit(decision)
            final = await self.wait(event_id, timeout_s)
            return final or decision

    async def record_job(self, job: JobLike, action: AppliedAction) -> None:
        """A deferred sync or an allowance expiry ran on the scheduler: audit it and add it to the Decision."""
        kind = "expiry" if job.kind == "expire_allowance" else "apply"
        await self._append(job.event_id, kind, {"job": job.kind, "applied": [action.model_dump(mode="json")]})
        self._metrics.applied.labels(kind=action.kind, mode=action.mode, executed=str(action.executed).lower()).inc()
        decision = await self._store.get(job.event_id)
        if decision is not None:
            await self._store.save(decision.model_copy(update={
                "applied": [*decision.applied, action], "updated_at": datetime.now(UTC)}))

    async def _now(self) -> datetime:
        try:
            return await asyncio.wait_for(self._clock.now(), timeout=1.0)
        except Exception:  # the clock may be what failed; the system clock still stamps the record
            return datetime.now(UTC)

    async def _append(self, event_id: str, kind: str, payload: dict[str, Any], once: str | None = None) -> bool:
        """Append an audit record; with `once`, only if no record of this kind carries that step yet."""
        async with self._audit_lock:
            if once is not None:
                for r in await self._audit.records(event_id):
                    if r.kind == kind and r.payload.get("step") == once:
                        return False
                payload = {**payload, "step": once}
            await self._audit.append(event_id, kind, payload)
        return True

    async def _decide(self, decision: Decision, *, fresh: bool = False) -> Decision:
        event = decision.event
        event_id = event.event_id
        config = {"configurable": {"thread_id": event_id}}
        started = time.perf_counter()
        resuming = decision.approval is not None
        state = DecisionState.APPLYING if resuming else DecisionState.DECIDING
        decision = decision.model_copy(update={"state": state, "updated_at": datetime.now(UTC)})
        await self._store.save(decision)
        failure: tuple[str, str] | None = None
        values: dict[str, Any] = {}
        settled: bool | None = None
        with _tracer.start_as_current_span("drift.decision", attributes={
                "driftwise.event_id": event_id, "driftwise.application": event.notification.app,
                "driftwise.resumed": resuming}):
            try:
                async with asyncio.timeout(self._cfg.decision_deadline_s):
                    if fresh and not resuming:
                        values, settled = await self._first_run(config, decision)
                    else:
                        values = await self._advance(config, decision)
            except TimeoutError:
                failure = ("deadline", f"the decision did not finish within drift.decision_deadline_s="
                                       f"{self._cfg.decision_deadline_s}s")
            except DriftAgentError as exc:
                failure = (exc.kind, str(exc))
            except Exception as exc:  # any other failure still ends in an escalation that names it
                log.exception("decision %s failed", event_id)
                failure = (type(exc).__name__, f"{type(exc).__name__}: {exc}")
            interrupted = False
            if resuming and failure is not None:
                # the verdict stands; carrying out the human's choice failed
                values = await self._partial(config, values)
                values["apply_error"] = failure[1]
                self._metrics.failures.labels(kind=f"apply.{failure[0]}").inc()
            elif failure is not None or not values.get("verdict"):
                if failure is None:
                    failure = ("incomplete", "the graph ended without a verdict")
                values = await self._partial(config, values)
                values["verdict"] = (await self._fallback_verdict(event_id, values, failure)).model_dump(mode="json")
                self._metrics.failures.labels(kind=failure[0]).inc()
                values, interrupted = await self._through_approval(config, values, event.notification.project)
            elif settled is not None:
                interrupted = settled  # the run streamed to its end or to the interrupt
            else:
                snapshot = await self._graph.aget_state(config)
                interrupted = _interrupted(snapshot)
                if not interrupted and not _ended(snapshot):
                    raise ThreadUnsettled(f"decision {event_id}: the graph stopped before its end "
                                          f"(next {list(snapshot.next)}, {len(snapshot.tasks)} task(s) pending)")
            elapsed_ms = (time.perf_counter() - started) * 1000
            return await self._record(decision, values, failure, elapsed_ms, interrupted)

    async def _first_run(self, config: dict[str, Any], decision: Decision) -> tuple[dict[str, Any], bool]:
        """Run a new thread to its end or to the approval interrupt, recording the verdict as soon as the
        guardrail gives it; the state and whether it was interrupted come from the stream itself."""
        values: dict[str, Any] = {}
        interrupted = False
        first = {"event": decision.event.model_dump(mode="json")}
        async for mode, chunk in self._graph.astream(first, config, durability=_DURABILITY,
                                                     stream_mode=["updates", "values"]):
            if mode == "values":
                values = dict(chunk)
            elif "__interrupt__" in chunk:
                interrupted = True
            elif (verdict := (chunk.get("guardrail") or {}).get("verdict")) is not None:
                await self._verdict_reached(decision, verdict)
        return values, interrupted

    async def _advance(self, config: dict[str, Any], decision: Decision) -> dict[str, Any]:
        """Run an existing thread on (after a crash, or with a human's answer) as far as it goes now."""
        snapshot = await self._graph.aget_state(config)
        if not snapshot.values:
            await self._graph.ainvoke({"event": decision.event.model_dump(mode="json")}, config,
                                      durability=_DURABILITY)
        elif _interrupted(snapshot):
            if decision.approval is None:
                return dict(snapshot.values)  # still waiting for a human (a replay after a crash)
            await self._graph.ainvoke(Command(resume=decision.approval.model_dump(mode="json")), config,
                                     durability=_DURABILITY)
        elif not _ended(snapshot):
            # from the last checkpoint: finished tasks are not run again, the steps after them are
            await self._graph.ainvoke(None, config, durability=_DURABILITY)
        return dict((await self._graph.aget_state(config)).values)

    async def _verdict_reached(self, decision: Decision, verdict: dict[str, Any]) -> None:
        """Record the guardrail's verdict before the graph acts on it: it is the decision; acting can take a while."""
        event_id = decision.event.event_id
        ms = round((datetime.now(UTC) - decision.event.received_at).total_seconds() * 1000, 2)
        self._verdict_ms[event_id] = ms
        await self._store.save(decision.model_copy(update={
            "state": DecisionState.DECIDING, "verdict": SignedVerdict.model_validate(verdict),
            "timings_ms": {**decision.timings_ms, "webhook_to_verdict": ms}, "updated_at": datetime.now(UTC)}))
        reached = self._verdicts.get(event_id)
        if reached is not None:
            reached.set()

    async def _through_approval(
        self, config: dict[str, Any], values: dict[str, Any], project: str
    ) -> tuple[dict[str, Any], bool]:
        """Put a fallback verdict on the thread as the guardrail's, so that it waits for a human like any other."""
        try:
            async with asyncio.timeout(max(2.0, self._cfg.decision_deadline_s / 2)):
                report = values.get("report")
                mode = self._cfg.mode_for(report["project"] if report else project)
                update = {"verdict": values["verdict"], "mode": mode}
                await self._graph.aupdate_state(config, update, as_node="guardrail")
                await self._graph.ainvoke(None, config)
                snapshot = await self._graph.aget_state(config)
                return {**values, **dict(snapshot.values)}, _interrupted(snapshot)
        except Exception:  # without a thread the decision still stands; it just cannot be resumed
            log.warning("fallback verdict of %s could not be put on its thread", config["configurable"]["thread_id"],
                        exc_info=True)
            return values, False

    async def _partial(self, config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        try:
            snapshot = await self._graph.aget_state(config)
            return {**dict(snapshot.values or {}), **values}
        except Exception:  # the checkpoint is a nicety here; the fallback verdict does not need it
            log.warning("no checkpoint state for %s", config["configurable"]["thread_id"], exc_info=True)
            return dict(values)

    async def _fallback_verdict(
        self, event_id: str, values: dict[str, Any], failure: tuple[str, str]
    ) -> SignedVerdict:
        now = await self._now()
        kind, message = failure
        reasons = [VerdictReason(code=f"failure.{kind}", message=message, source="drift-agent")]
        for u in values.get("unreachable") or []:
            reasons.append(VerdictReason(
                code="specialist.unreachable", message=f"{u['agent']}: {u['reason']}: {u.get('detail', '')}",
                source="drift-agent"))
        for e in values.get("evidence") or []:
            if e.get("error"):
                reasons.append(VerdictReason(
                    code="evidence.missing", message=f"{e['id']} ({e['source']}.{e['tool']}): {e['error']}",
                    source="drift-agent"))
        verdict = Verdict(
            event_id=event_id,
            action=Action.ESCALATE,
            requires_approval=True,
            allowed_actions=[Action.ENFORCE, Action.DEFER, Action.ALLOW, Action.ESCALATE],
            confidence=0.0,
            threshold=self._cfg.confidence_threshold,
            reasons=reasons,
            decided_at=now,
        )
        return self._signer.sign_verdict(verdict, [self._cfg.agent_id])

    def _state(self, values: dict[str, Any], verdict: Verdict, interrupted: bool) -> DecisionState:
        if interrupted:
            return DecisionState.AWAITING_APPROVAL
        if values.get("apply_error"):
            return DecisionState.FAILED
        if "applied" in values or values.get("approval"):
            return DecisionState.DONE  # the graph reached `apply`
        return final_state(verdict)

    async def _record(
        self, decision: Decision, values: dict[str, Any], failure: tuple[str, str] | None, elapsed_ms: float,
        interrupted: bool,
    ) -> Decision:
        event = decision.event
        signed = SignedVerdict.model_validate(values["verdict"])
        resumed = decision.approval is not None
        timings = {**decision.timings_ms, **(values.get("timings_ms") or {})}
        timings["apply" if resumed else "decision"] = round(elapsed_ms, 2)
        if event.event_id in self._verdict_ms:
            timings["webhook_to_verdict"] = self._verdict_ms[event.event_id]
        if not resumed:
            timings["webhook_to_final"] = round((datetime.now(UTC) - event.received_at).total_seconds() * 1000, 2)
        report = values.get("report")
        proposal = values.get("proposal")
        applied = [AppliedAction.model_validate(a) for a in values.get("applied") or []]
        state = self._state(values, signed.verdict, interrupted)
        error = failure[1] if failure else None
        if values.get("apply_error"):
            error = f"apply: {values['apply_error']}"
        final = decision.model_copy(
            update={
                "state": state,
                "mode": values.get("mode") or self._cfg.mode_for(report["project"] if report
                                                                 else event.notification.project),
                "report": DriftReport.model_validate(report) if report else None,
                "evidence": [Evidence.model_validate(e) for e in values.get("evidence") or []],
                "recommendations": [SignedRecommendation.model_validate(a) for a in values.get("answers") or []],
                "proposal": SignedRecommendation.model_validate(proposal) if proposal and "jws" in proposal else None,
                "verdict": signed,
                "approval": Approval.model_validate(values["approval"]) if values.get("approval")
                else decision.approval,
                "applied": applied,
                "backport_patch": values.get("backport_patch") or decision.backport_patch,
                "llm": LlmUsage.model_validate(values["llm"]) if values.get("llm") else None,
                "timings_ms": timings,
                "error": error,
                "updated_at": datetime.now(UTC),
            }
        )
        payload = {
            "event": event.model_dump(mode="json"),
            "report_digest": report_digest(report),
            "evidence": values.get("evidence") or [],
            "recommendations": values.get("answers") or [],
            "unreachable": values.get("unreachable") or [],
            "proposal": proposal if proposal and "jws" in proposal else None,
            "opa_input": values.get("opa_input"),
            "opa_result": values.get("opa_result"),
            "verdict": values["verdict"],
            "state": (DecisionState.AWAITING_APPROVAL if interrupted else state).value,
            "mode": final.mode,
            "failure": {"kind": failure[0], "message": failure[1]} if failure and not resumed else None,
            "timings_ms": timings,
        }
        # The audit records first: a decision visible as final always has its audit records.
        first = await self._append(event.event_id, "decision", payload, once="decided")
        acted = bool(values.get("applied")) and not interrupted
        if acted:
            wrote = await self._append(event.event_id, "apply", {
                "mode": final.mode, "applied": values.get("applied") or [],
                "approval": values.get("approval"), "backport_patch": values.get("backport_patch"),
                "error": values.get("apply_error"),
            }, once="graph")
            for a in applied if wrote else []:
                self._metrics.applied.labels(kind=a.kind, mode=a.mode, executed=str(a.executed).lower()).inc()
        await self._store.save(final)
        if first:
            self._metrics.decisions.labels(action=signed.verdict.action.value, mode=final.mode).inc()
            if "webhook_to_final" in timings:
                self._metrics.latency.observe(timings["webhook_to_final"] / 1000)
        if values.get("apply_error") and not resumed:
            self._metrics.failures.labels(kind="apply").inc()
        log.info("decision %s %s: %s (%s%s) in %.0f ms", event.event_id, event.idempotency_key,
                 signed.verdict.action.value, final.state.value, f", {final.mode}" if acted else "", elapsed_ms)
        return final
