"""Runs decisions: background tasks with bounded concurrency, a deadline per decision, crash recovery.

Invariants (DESIGN "The record is the truth"), each held by a test in tests/drift/ or tests/acting/:
- Every event answered 202 reaches exactly one terminal state (done, failed — and those the intake
  adds: superseded, unknown application; a human's rejection ends `done` with nothing applied; a wait
  nobody answered ends `expired`).
  `awaiting_approval` is not terminal: the thread waits, durably, for the human; `applying` is not
  either: an action is in flight.
- Every write Driftwise makes to Argo CD (sync, dry-run sync, Application patch) is recorded by
  exactly the decision that made it, and every write a decision records is among Argo CD's writes:
  the outbox (agents.drift.acting.store, in the same database as the decisions, SQLite or PostgreSQL)
  marks each write `requested` before the call, and a crash is resolved from Argo CD's own state
  (`operation.info` carries the event id), never by sending again or by deciding again. The verdict
  and its outbox intent row are written in one transaction (agents.drift.store.intent_row).
- The audit holds one `decision` record per decision and one `apply` record per time the graph acted
  (agents.drift.recording keys every append).
- A verdict is never rewritten once given: the fallback escalation (deadline, failure) applies only
  before the guardrail's verdict; after it, a deadline records the decision as in flight and the
  action runs on to Argo CD's answer.
- Every escalation says why: a failure's kind (deadline, database_busy, an error kind) is in the
  verdict's reasons, the Decision's `error` and the `decision` audit record.

A decision runs in two legs. Deciding (observe … guardrail) with checkpoint durability "async": a
crash re-runs those steps, which only read, sign and ask the specialists again; the leg ends at the
guardrail with its checkpoint written. Acting (request_approval, approve, apply) with durability
"sync": each step's checkpoint is written before the next starts (~1 ms of SQLite commit per step),
so nothing after the guardrail is lost and a resumed thread never decides again.

States: received -> deciding -> awaiting_approval (thread interrupted) | applying -> done | failed;
an approval moves awaiting_approval -> applying -> done | failed; nobody answering within
drift.approval_timeout_h moves it awaiting_approval -> expired (agents.drift.approval_wait), through the
same conditional write (EventStore.transition) as the approval, so exactly one of the two happens.

Replicas (agents.drift.leases, whose docstring holds their invariants): with a LeaseKeeper a decision runs
only under this replica's lease (taken by `submit`, released when `_run` ends; a renewal that finds it lost
cancels the run, and every write is fenced), `take_over` is the one crash-recovery path (start-up, and every
lease interval for the leases a dead replica left), `resume` takes the lease of a decision another replica
decided, and `wait` answers for decisions another replica runs from the shared store.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

from langgraph.constants import INTERRUPT
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from opentelemetry import trace

from agents.drift.approvers import Approvers
from agents.drift.clock import Clock
from agents.drift.config import DriftConfig, Mode
from agents.drift.errors import DriftAgentError, LeaseLost, StoreError
from agents.drift.identity import asserted
from agents.drift.leases import LeaseKeeper
from agents.drift.metrics import DriftMetrics
from agents.drift.open_rule import UNDECIDED
from agents.drift.recording import AuditLike, Failure, JobLike, OnWaiting, Recorder
from agents.drift.steps import ApplyFailure, DriftState, Guard, Update
from agents.drift.store import EventStore
from protocol.models import AppliedAction, Approval, Decision, DecisionState, DriftEvent, DriftReport, SignedVerdict
from protocol.signing import Signer

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("driftwise.drift")

DECIDING_DURABILITY = "async"
ACTING_DURABILITY = "sync"
WAIT_POLL_S = (0.05, 1.0)
"""A long poll of a decision another replica works on re-reads the store from every 50 ms, backing off to every
second: a bounded poll (not LISTEN/NOTIFY, which SQLite lacks), cheap while hundreds of clients wait."""


class ApprovalConflict(DriftAgentError):
    """An approval that cannot be taken: no such decision, not awaiting one, an action not allowed, or (403)
    an approver the project's rule (console.approvers) does not list."""

    kind = "approval_conflict"

    def __init__(self, message: str, status: int = 409, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = allowed or []


class ThreadUnsettled(StoreError):
    """The graph thread is neither at its end nor waiting for a human: the decision must not be recorded yet.

    A StoreError so that `_run` runs the decision again from its checkpoint; after that it stays open and
    is resumed on the next start, never recorded as final from a partial state."""


class VerdictPut(Update):
    """What the runner writes on a thread as the guardrail's: a fallback escalation, or the recorded verdict."""

    event: DriftEvent
    report: DriftReport | None
    verdict: SignedVerdict
    mode: Mode


def not_awaiting(decision: Decision) -> str:
    """Why a decision cannot be answered any more, naming what it is now."""
    event_id = decision.event.event_id
    if decision.state == DecisionState.EXPIRED:
        at = decision.expired_at.isoformat() if decision.expired_at else "its bound"
        return (f"decision {event_id} is expired: nobody answered it by {at} (drift.approval_timeout_h), so nothing "
                "was done; a drift that persists is decided again as a new event: answer that one")
    return f"decision {event_id} is {decision.state.value}, not awaiting_approval"


def _interrupted(snapshot: Any) -> bool:
    return bool(snapshot.next) and any(getattr(t, "interrupts", ()) for t in snapshot.tasks)


def _ended(snapshot: Any) -> bool:
    """The thread reached END: no `next` and no task whose writes are pending."""
    return not snapshot.next and not snapshot.tasks


def _load_failure(exc: BaseException) -> Failure | None:
    """A failure caused by load rather than by the drift: its own kind, so the escalation says so."""
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return Failure(kind="database_busy", message=f"the state database was busy: {exc}")
    return None


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
        on_waiting: OnWaiting | None = None,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self._cfg = config
        self._leases = leases
        self._graph = graph
        self._store = store
        self._metrics = metrics
        self._recorder = Recorder(config, store, audit, signer, clock, metrics, on_waiting)
        self._sem = asyncio.Semaphore(config.max_concurrent_decisions)
        self._tasks: dict[str, asyncio.Task[Decision]] = {}
        self._done: dict[str, asyncio.Event] = {}
        # set once the guardrail's verdict is recorded (before acting on it), and when the decision ends
        self._verdicts: dict[str, asyncio.Event] = {}
        self._verdict_ms: dict[str, float] = {}
        self._approval_locks: dict[str, asyncio.Lock] = {}
        self._approvers = Approvers(config.console.approvers)

    async def submit(self, decision: Decision) -> None:
        """Run the decision in the background, once its lease is this replica's (another live replica's
        lease: that replica works on it, and this one leaves it)."""
        event_id = decision.event.event_id
        if event_id in self._tasks:
            return
        if self._leases is not None:
            if not await self._leases.take(event_id):
                log.info("decision %s is leased by another replica: left to it", event_id)
                return
            if event_id in self._tasks:  # submitted meanwhile (the take awaited the database)
                await self._leases.release(event_id)
                return
        self._done.setdefault(event_id, asyncio.Event())
        self._verdicts.setdefault(event_id, asyncio.Event())
        task = asyncio.create_task(self._run(decision), name=f"decision-{event_id}")
        self._tasks[event_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(event_id, None))
        if self._leases is not None:
            self._leases.watch(event_id, task.cancel)  # a lease lost: the work stops here, not at its next write

    async def wait(self, event_id: str, timeout_s: float, *, until_verdict: bool = False) -> Decision | None:
        """The decision once final, or with `until_verdict` once its verdict is recorded (before it is acted
        on); its current state after `timeout_s`. None if there is no such event. A decision this process
        is not running (another replica is, or nobody) is re-read from the shared store (WAIT_POLL_S),
        so the long poll answers the same on every replica."""
        done = (self._verdicts if until_verdict else self._done).get(event_id)
        if done is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await done.wait()
            except TimeoutError:
                pass
            return await self._store.get(event_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pause = WAIT_POLL_S[0]
        while True:
            decision = await self._store.get(event_id)
            if decision is None or decision.final or (until_verdict and decision.verdict is not None):
                return decision
            left = deadline - loop.time()
            if left <= 0:
                return decision
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, WAIT_POLL_S[1])

    async def take_over(self, submit: Callable[[Decision], Awaitable[None]] | None = None) -> int:
        """Crash recovery, of this process and of any replica: every undecided event whose lease ran out (or that
        has none, or is this replica's own from before a restart) is given to `submit` (the process's admission,
        which admits a `received` one first; by default this runner) and runs on from its checkpoint. Called at
        start-up and every lease interval; the lease `submit` takes makes one replica win each event."""
        # another replica's: no more than this one can run now, the rest is left to the others (or the next
        # tick); this replica's own from before a restart: all of them
        room = self._cfg.max_concurrent_decisions - (self._leases.count if self._leases is not None else 0)
        if self._leases is not None:
            pending = await self._leases.store.unowned(self._leases.owner)
        else:
            pending = [(d, True) for d in await self._store.undecided()]
        taken = 0
        for decision, own in pending:
            event_id = decision.event.event_id
            if event_id in self._tasks or (self._leases is not None and self._leases.holds(event_id)):
                continue  # being worked on here
            if not own and taken >= room:
                break
            log.info("taking over undecided event %s (%s)", event_id, decision.event.idempotency_key)
            await (submit or self.submit)(decision)
            taken += 1
        return taken

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def resume(self, event_id: str, approval: Approval, timeout_s: float) -> Decision:
        """A human's answer: recorded in the audit chain, then the interrupted thread resumes with it, here,
        from its shared checkpoint, whichever replica decided it (this one takes its lease first)."""
        lock = self._approval_locks.setdefault(event_id, asyncio.Lock())
        async with lock:
            await self._lease_for_answer(event_id, timeout_s)
            try:
                return await self._answer(event_id, approval, timeout_s)
            finally:
                if self._leases is not None:
                    await self._leases.release(event_id)  # the resumed run holds its own while it acts

    async def _lease_for_answer(self, event_id: str, timeout_s: float) -> None:
        """The decision's lease, waited for (bounded) while another replica still holds it: the one that
        decided it releases it as the thread starts waiting, or it runs out if that replica died."""
        if self._leases is None:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + min(timeout_s, self._leases.ttl_s + 1.0)
        while not await self._leases.take(event_id):
            if loop.time() >= until:
                raise ApprovalConflict(f"decision {event_id} is being worked on by another replica: answer again "
                                       "in a moment", status=409)
            await asyncio.sleep(WAIT_POLL_S[0])

    async def _answer(self, event_id: str, approval: Approval, timeout_s: float) -> Decision:
        decision = await self._store.get(event_id)
        if decision is None:
            raise ApprovalConflict(f"no decision for event {event_id}", status=404)
        if decision.state != DecisionState.AWAITING_APPROVAL or decision.verdict is None:
            raise ApprovalConflict(not_awaiting(decision))
        identity = approval.identity or asserted(approval.approver, "approvals_token", None)
        if (refusal := self._approvers.refusal(identity, decision.event.notification.project)) is not None:
            raise ApprovalConflict(refusal, status=403)
        approval = approval.model_copy(update={"identity": identity})  # the audit records who, and how known
        verdict = decision.verdict.verdict
        allowed = [a.value for a in verdict.allowed_actions]
        if approval.decision == "approve":
            chosen = approval.action or verdict.action
            if chosen not in verdict.allowed_actions:
                raise ApprovalConflict(f"action {chosen.value!r} is not allowed for {event_id}: choose one of "
                                       f"{', '.join(allowed)}", allowed=allowed)
            approval = approval.model_copy(update={"action": chosen})
        if approval.at is None:
            approval = approval.model_copy(update={"at": await self._recorder.now()})
        taken = await self._store.transition(decision.model_copy(update={
            "approval": approval, "state": DecisionState.APPLYING, "updated_at": datetime.now(UTC)}),
            DecisionState.AWAITING_APPROVAL)  # the one check the expiry of the wait passes through too
        if taken is None:
            moved = await self._store.get(event_id)
            raise ApprovalConflict(not_awaiting(moved or decision))
        decision = taken
        await self.submit(decision)  # its thread audits the answer (Recorder.approval) as it resumes
        final = await self.wait(event_id, timeout_s)
        return final or decision

    async def record_job(self, job: JobLike, action: AppliedAction) -> None:
        await self._recorder.record_job(job, action)

    # --- one decision ---------------------------------------------------------------------------

    async def _run(self, decision: Decision) -> Decision:
        event_id = decision.event.event_id
        try:
            async with self._sem:
                if self._leases is not None:
                    if not self._leases.holds(event_id):
                        # lost while it queued for the semaphore: another replica took it over
                        return await self._store.get(event_id) or decision
                    # as it stands now, under the lease: a take-over may have read it before its last run ended
                    fresh = await self._store.get(event_id)
                    if fresh is not None and fresh.state not in UNDECIDED:
                        return fresh
                    decision = fresh or decision
                for attempt in range(3):
                    try:
                        return await self._decide(decision)
                    except LeaseLost as exc:
                        log.warning("decision %s: %s", event_id, exc)
                        return await self._store.get(event_id) or decision
                    except (sqlite3.OperationalError, StoreError) as exc:
                        # a busy database, or a thread a crash left between steps: every step is replay-safe
                        # (checkpoints, keyed audit appends, the outbox), so the decision runs on from its checkpoint
                        if attempt == 2:
                            raise
                        log.warning("decision %s: %s; running it again", event_id, exc, exc_info=True)
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
            if self._leases is not None:
                await self._leases.release(event_id)
            self._verdict_ms.pop(event_id, None)
            for events in (self._verdicts, self._done):
                done = events.pop(event_id, None)
                if done is not None:
                    done.set()

    async def _decide(self, decision: Decision) -> Decision:
        event = decision.event
        config = {"configurable": {"thread_id": event.event_id}}
        started = time.perf_counter()
        resuming = decision.approval is not None
        if resuming:
            await self._recorder.approval(decision)
        deadline = asyncio.get_running_loop().time() + self._cfg.decision_deadline_s
        decision = decision.model_copy(update={
            "state": DecisionState.APPLYING if resuming else DecisionState.DECIDING, "updated_at": datetime.now(UTC)})
        await self._store.save(decision)
        failure: Failure | None = None
        with _tracer.start_as_current_span("drift.decision", attributes={
                "driftwise.event_id": event.event_id, "driftwise.application": event.notification.app,
                "driftwise.resumed": resuming}):
            state, interrupted = None, False
            if not resuming:
                try:
                    async with asyncio.timeout_at(deadline):
                        state, interrupted = await self._to_verdict(config, decision)
                except (ThreadUnsettled, LeaseLost):
                    raise  # not a failure of the decision: `_run` runs it on from its checkpoint, or leaves it
                except TimeoutError:
                    failure = Failure(kind="deadline", message="the decision had no verdict within "
                                      f"drift.decision_deadline_s={self._cfg.decision_deadline_s}s")
                except DriftAgentError as exc:
                    failure = Failure(kind=exc.kind, message=str(exc))
                except Exception as exc:  # any other failure still ends in an escalation that names it
                    failure = _load_failure(exc)
                    if failure is None:
                        log.exception("decision %s failed", event.event_id)
                        failure = Failure(kind=type(exc).__name__, message=f"{type(exc).__name__}: {exc}")
                if failure is not None:
                    self._metrics.failures.labels(kind=failure.kind).inc()
                    state = await self._fallback(config, decision, failure)
                    # the escalation's own approval request gets a bound of its own past the spent deadline
                    deadline = asyncio.get_running_loop().time() + max(2.0, self._cfg.decision_deadline_s / 2)
            if state is None or not (interrupted or state.acted):
                state, interrupted, acting_failure = await self._act_or_fail(config, decision, deadline)
                failure = failure or acting_failure
            elapsed_ms = (time.perf_counter() - started) * 1000
            return await self._recorder.record(decision, state, failure, elapsed_ms, interrupted,
                                               self._verdict_ms.get(event.event_id))

    async def _to_verdict(self, config: dict[str, Any], decision: Decision) -> tuple[DriftState | None, bool]:
        """Run the thread up to the guardrail's verdict (or on from a checkpoint) and record the verdict as
        the decision's before anything acts on it. Returns (state, interrupted) when the thread is past the
        verdict already (a resume after a crash); (None, False) when acting is next."""
        snapshot = await self._graph.aget_state(config)
        state = DriftState.model_validate(snapshot.values) if snapshot.values else None
        if (state is None or state.verdict is None) and decision.verdict is not None:
            # the verdict was recorded (the intent) but the thread lost it (its checkpoint file did):
            # put the recorded one back and act on it; never decide again
            log.warning("decision %s: the thread lost its recorded verdict; acting on the record",
                        decision.event.event_id)
            await self._put_verdict(config, decision, decision.verdict, decision.report)
            return None, False
        if state is None or state.verdict is None:
            first = {"event": decision.event} if state is None else None
            state = await self._deciding_leg(config, first) or state
            snapshot = await self._graph.aget_state(config)
            if (state is None or state.verdict is None) and not snapshot.next and self._graph.checkpointer is not None:
                # the thread has nothing left to run and no verdict: a replica killed as it wrote a step leaves
                # checkpoint writes the graph resumes instead of taking the input (the event lost, or a thread
                # "ended" before its verdict). Nothing before the verdict acted (every step up to it only reads,
                # and no verdict was recorded: checked above), so the thread starts over from the event
                log.warning("decision %s: its thread stopped before the verdict with nothing left to run; starting "
                            "it over", decision.event.event_id)
                await self._graph.checkpointer.adelete_thread(decision.event.event_id)
                state = await self._deciding_leg(config, {"event": decision.event})
                snapshot = await self._graph.aget_state(config)
        if state is None or state.verdict is None:
            raise ThreadUnsettled(f"decision {decision.event.event_id}: the graph stopped before the verdict "
                                  f"(next {list(snapshot.next)})")
        await self._verdict_reached(decision, state.verdict, state.report)
        if _interrupted(snapshot):
            return state, True
        if _ended(snapshot):
            return state, False
        return None, False

    async def _deciding_leg(self, config: dict[str, Any], first: dict[str, Any] | None) -> DriftState | None:
        """Stream the deciding leg, stopping after the guardrail (its checkpoint is written when the leg returns);
        the last state, or None when the thread has no event (it did not take `first`)."""
        state: DriftState | None = None
        stream = self._graph.astream(first, config, durability=DECIDING_DURABILITY, interrupt_after=[Guard.name],
                                     stream_mode="values")
        async with aclosing(stream):
            async for chunk in stream:
                if INTERRUPT in chunk:
                    continue
                if "event" not in chunk:
                    return None
                state = DriftState.model_validate(chunk)
        return state

    async def _act_or_fail(self, config: dict[str, Any], decision: Decision, deadline: float
                           ) -> tuple[DriftState, bool, Failure | None]:
        """The acting leg, run again once if it fails (the outbox keeps each write to one and completes the
        record from Argo CD); failing twice, the verdict stands and the decision ends `failed`, naming why."""
        for attempt in (1, 2):
            try:
                state, interrupted = await self._act(config, decision, deadline)
                return state, interrupted, None
            except (ThreadUnsettled, sqlite3.OperationalError, StoreError):
                raise  # `_run` runs the decision on from its checkpoint
            except Exception as exc:  # any failure carrying out the verdict: it stands, the failure is named
                kind = exc.kind if isinstance(exc, DriftAgentError) else type(exc).__name__
                log.warning("decision %s: acting failed (attempt %d): %s", decision.event.event_id, attempt, exc,
                            exc_info=True)
                failure = Failure(kind=f"apply.{kind}", message=f"carrying out the verdict failed: {exc}")
            deadline = asyncio.get_running_loop().time() + max(2.0, self._cfg.decision_deadline_s / 2)
        self._metrics.failures.labels(kind=failure.kind).inc()
        state = DriftState.model_validate((await self._graph.aget_state(config)).values)
        return state.model_copy(update={"apply_error": ApplyFailure(kind=failure.kind, message=failure.message)}), \
            False, failure

    async def _act(self, config: dict[str, Any], decision: Decision, deadline: float) -> tuple[DriftState, bool]:
        """The acting leg (sync durability): on from the verdict, or with a human's answer. The deadline
        does not stop it: once an action is intended, the record says `applying` until Argo CD answers."""
        command: Any = None
        if decision.approval is not None and _interrupted(await self._graph.aget_state(config)):
            command = Command(resume=decision.approval)  # else: a crash came after `approve`; run on from there
        act = asyncio.ensure_future(self._stream(config, command))
        try:
            done, _ = await asyncio.wait({act}, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
            if not done:
                recorded = await self._store.get(decision.event.event_id) or decision
                if recorded.verdict is not None:
                    await self._recorder.in_flight(recorded, "deadline: drift.decision_deadline_s="
                                                   f"{self._cfg.decision_deadline_s}s passed with the action in "
                                                   "flight; it is recorded when Argo CD answers")
                log.warning("decision %s: the deadline passed with the action in flight", decision.event.event_id)
            state, interrupted = await act
        finally:
            act.cancel()  # only when this decision itself is cancelled (shutdown): a no-op once it is done
        if not interrupted and not state.acted:
            snapshot = await self._graph.aget_state(config)
            if not _ended(snapshot):
                raise ThreadUnsettled(f"decision {decision.event.event_id}: the graph stopped before its end "
                                      f"(next {list(snapshot.next)}, {len(snapshot.tasks)} task(s) pending)")
        return state, interrupted

    async def _stream(self, config: dict[str, Any], command: Any) -> tuple[DriftState, bool]:
        state: DriftState | None = None
        interrupted = False
        async for chunk in self._graph.astream(command, config, durability=ACTING_DURABILITY, stream_mode="values"):
            if INTERRUPT in chunk:
                interrupted = interrupted or bool(chunk[INTERRUPT])
            else:
                state = DriftState.model_validate(chunk)
        if state is None:
            state = DriftState.model_validate((await self._graph.aget_state(config)).values)
        return state, interrupted

    async def _verdict_reached(self, decision: Decision, verdict: SignedVerdict, report: DriftReport | None) -> None:
        """Record the verdict before the graph acts on it — the intent: it is the decision (in the same file as
        the outbox), and a resume acts on it rather than deciding again."""
        event_id = decision.event.event_id
        ms = round((datetime.now(UTC) - decision.event.received_at).total_seconds() * 1000, 2)
        self._verdict_ms.setdefault(event_id, ms)
        await self._store.save(decision.model_copy(update={
            "state": DecisionState.APPLYING, "verdict": verdict, "report": report or decision.report,
            "timings_ms": {**decision.timings_ms, "webhook_to_verdict": self._verdict_ms[event_id]},
            "updated_at": datetime.now(UTC)}))
        reached = self._verdicts.get(event_id)
        if reached is not None:
            reached.set()

    async def _fallback(self, config: dict[str, Any], decision: Decision, failure: Failure) -> DriftState:
        """Before the guardrail's verdict only: an escalation naming the failure, put on the thread as the
        guardrail's so that it waits for a human like any other (the acting leg takes it from there)."""
        try:
            snapshot = await self._graph.aget_state(config)
            partial = DriftState.model_validate(snapshot.values) if snapshot.values else None
        except Exception:  # the checkpoint is a nicety here; the fallback verdict does not need it
            log.warning("no checkpoint state for %s", decision.event.event_id, exc_info=True)
            partial = None
        if partial is not None and partial.verdict is not None:
            return partial  # the guardrail gave its verdict after all: it stands
        verdict = await self._recorder.fallback_verdict(decision.event.event_id, partial, failure)
        return await self._put_verdict(config, decision, verdict, partial.report if partial else None)

    async def _put_verdict(self, config: dict[str, Any], decision: Decision, verdict: SignedVerdict,
                           report: DriftReport | None) -> DriftState:
        """Put a verdict on the thread as the guardrail's (the acting leg takes it from there) and record it."""
        project = report.project if report else decision.event.notification.project
        # the event too: a thread a crash or a busy database left without its first checkpoint gets it here
        update = VerdictPut(event=decision.event, report=report, verdict=verdict, mode=self._cfg.mode_for(project))
        await self._graph.aupdate_state(config, update.fields(), as_node=Guard.name)
        await self._verdict_reached(decision, verdict, report)
        return DriftState.model_validate((await self._graph.aget_state(config)).values)


__all__ = ["ApprovalConflict", "DecisionRunner", "ThreadUnsettled", "not_awaiting"]
