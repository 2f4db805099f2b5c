"""Runs decisions: background tasks with bounded concurrency, a deadline per decision, crash recovery.

Whatever happens inside the graph (a backend down, a peer gone, OPA failing, the deadline), a
decision ends with a signed verdict, a persisted Decision and exactly one audit record; the
fallback verdict is an escalation whose reasons say what happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from langgraph.graph.state import CompiledStateGraph

from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.errors import DriftAgentError
from agents.drift.metrics import DriftMetrics
from agents.drift.store import EventStore
from protocol.models import (
    Action,
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


class AuditLike(Protocol):
    async def append(self, event_id: str, kind: str, payload: dict[str, Any]) -> Any: ...


def report_digest(report: dict[str, Any] | None) -> str | None:
    if report is None:
        return None
    return hashlib.sha256(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def final_state(verdict: Verdict) -> DecisionState:
    """Acting on verdicts comes later (issue 7): a verdict a human must confirm waits for one."""
    if verdict.requires_approval or verdict.action == Action.ESCALATE:
        return DecisionState.AWAITING_APPROVAL
    return DecisionState.DONE


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
        # AuditLog appends on one connection must not interleave (each is a BEGIN IMMEDIATE transaction).
        self._audit_lock = asyncio.Lock()

    async def submit(self, decision: Decision) -> None:
        event_id = decision.event.event_id
        if event_id in self._tasks:
            return
        self._done.setdefault(event_id, asyncio.Event())
        task = asyncio.create_task(self._run(decision), name=f"decision-{event_id}")
        self._tasks[event_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(event_id, None))

    async def wait(self, event_id: str, timeout_s: float) -> Decision | None:
        """The decision once final (or its current state after `timeout_s`)."""
        done = self._done.get(event_id)
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
                return await self._decide(decision)
        except asyncio.CancelledError:
            raise
        except Exception:  # the last line of defence of a background task: never lose the event silently
            log.exception("decision %s could not be recorded", event_id)
            raise
        finally:
            done = self._done.pop(event_id, None)
            if done is not None:
                done.set()

    async def _decide(self, decision: Decision) -> Decision:
        event = decision.event
        event_id = event.event_id
        config = {"configurable": {"thread_id": event_id}}
        started = time.perf_counter()
        decision = decision.model_copy(update={"state": DecisionState.DECIDING, "updated_at": datetime.now(UTC)})
        await self._store.save(decision)
        failure: tuple[str, str] | None = None
        values: dict[str, Any] = {}
        try:
            async with asyncio.timeout(self._cfg.decision_deadline_s):
                snapshot = await self._graph.aget_state(config)
                if snapshot.values and not snapshot.next and snapshot.values.get("verdict"):
                    values = dict(snapshot.values)  # decided before a crash, not yet recorded
                elif snapshot.values and snapshot.next:
                    values = await self._graph.ainvoke(None, config)
                else:
                    values = await self._graph.ainvoke({"event": event.model_dump(mode="json")}, config)
        except TimeoutError:
            failure = ("deadline", f"the decision did not finish within drift.decision_deadline_s="
                                   f"{self._cfg.decision_deadline_s}s")
        except DriftAgentError as exc:
            failure = (exc.kind, str(exc))
        except Exception as exc:  # any other failure still ends in an escalation that names it
            log.exception("decision %s failed", event_id)
            failure = (type(exc).__name__, f"{type(exc).__name__}: {exc}")
        if failure is not None or not values.get("verdict"):
            if failure is None:
                failure = ("incomplete", "the graph ended without a verdict")
            values = await self._partial(config, values)
            values["verdict"] = (await self._fallback_verdict(event_id, values, failure)).model_dump(mode="json")
            self._metrics.failures.labels(kind=failure[0]).inc()
        elapsed_ms = (time.perf_counter() - started) * 1000
        return await self._record(decision, values, failure, elapsed_ms)

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
        try:
            now = await asyncio.wait_for(self._clock.now(), timeout=1.0)
        except Exception:  # the clock may be what failed; the system clock still stamps the verdict
            now = datetime.now(UTC)
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

    async def _record(
        self, decision: Decision, values: dict[str, Any], failure: tuple[str, str] | None, elapsed_ms: float
    ) -> Decision:
        event = decision.event
        signed = SignedVerdict.model_validate(values["verdict"])
        timings = {**(values.get("timings_ms") or {}), "decision": round(elapsed_ms, 2)}
        received = event.received_at
        timings["webhook_to_final"] = round((datetime.now(UTC) - received).total_seconds() * 1000, 2)
        report = values.get("report")
        proposal = values.get("proposal")
        final = decision.model_copy(
            update={
                "state": final_state(signed.verdict),
                "mode": self._cfg.mode_for(report["project"] if report else event.notification.project),
                "report": DriftReport.model_validate(report) if report else None,
                "evidence": [Evidence.model_validate(e) for e in values.get("evidence") or []],
                "recommendations": [SignedRecommendation.model_validate(a) for a in values.get("answers") or []],
                "proposal": SignedRecommendation.model_validate(proposal) if proposal and "jws" in proposal else None,
                "verdict": signed,
                "llm": LlmUsage.model_validate(values["llm"]) if values.get("llm") else None,
                "timings_ms": timings,
                "error": failure[1] if failure else None,
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
            "state": final.state.value,
            "mode": final.mode,
            "failure": {"kind": failure[0], "message": failure[1]} if failure else None,
            "timings_ms": timings,
        }
        # The audit record first: a decision visible as final always has its audit record.
        async with self._audit_lock:
            await self._audit.append(event.event_id, "decision", payload)
        await self._store.save(final)
        self._metrics.decisions.labels(action=signed.verdict.action.value, mode=final.mode).inc()
        self._metrics.latency.observe(timings["webhook_to_final"] / 1000)
        log.info("decision %s %s: %s (%s) in %.0f ms", event.event_id, event.idempotency_key,
                 signed.verdict.action.value, final.state.value, timings["webhook_to_final"])
        return final
