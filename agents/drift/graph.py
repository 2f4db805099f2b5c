"""The drift decision as a LangGraph graph.

observe -> gather -> delegate -> reason -> sign -> guardrail -> [request_approval -> approve] -> apply

One thread per drift event (thread_id = event_id), checkpointed after every node so that a
decision interrupted by a crash resumes where it stopped. The state holds JSON only (models are
dumped with mode="json" and validated back in each node) so checkpoints stay portable.
When the verdict needs a human (agents.drift.acting.applier.needs_approval), `request_approval`
writes the request (status annotation) and `approve` interrupts: the thread waits, durably, for
`Command(resume=<Approval JSON>)` from the approvals API — in this process or a later one.
`request_approval` is its own node so that resuming (which re-runs the interrupted node) does not
write the request twice. Recording the Decision and the audit records happens outside the graph
(agents.drift.runner), in one place for the normal path and for the deadline/failure path alike.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from opentelemetry import trace
from pydantic import BaseModel

from agents.drift.acting.applier import Mode, needs_approval
from agents.drift.acting.errors import ApplyError
from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.observe import Observer, ToolCaller, namespace_labels
from agents.drift.reasoning.base import Reasoner, ReasoningInput
from protocol.errors import VerificationError
from protocol.models import (
    Action,
    AnalysisRequest,
    AppliedAction,
    Approval,
    DriftEvent,
    DriftReport,
    Evidence,
    Recommendation,
    SignedRecommendation,
    SignedVerdict,
    Verdict,
)
from protocol.signing import Signer, Verifier

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("driftwise.drift")


class PlannedCallLike(Protocol):
    id: str
    server: str
    tool: str
    arguments: dict[str, Any]


class Peers(Protocol):
    async def analyze(
        self, url: str, request: AnalysisRequest, token: str, timeout_s: float
    ) -> SignedRecommendation: ...


class GuardrailOutcomeLike(Protocol):
    verdict: Any
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None


class GuardrailLike(Protocol):
    async def evaluate(
        self, *, report: DriftReport, proposal: SignedRecommendation, specialists: list[SignedRecommendation],
        expected_specialists: list[str], now: datetime, second_opinion: Recommendation | None = None,
    ) -> GuardrailOutcomeLike: ...


class ApplierLike(Protocol):
    """The slice of agents.drift.acting.applier.Applier the graph uses."""

    async def apply(
        self, *, mode: Mode, action: Action, report: DriftReport, verdict: Verdict, now: datetime,
        approved_by: str | None = None,
    ) -> tuple[list[AppliedAction], str | None]: ...

    async def request_approval(self, report: DriftReport, verdict: Verdict, mode: Mode, now: datetime
                               ) -> list[AppliedAction]: ...


@dataclass
class GraphDeps:
    """What the graph's nodes use; built once per process (agents.drift.app) and injectable in tests."""

    config: DriftConfig
    clock: Clock
    observer: Observer
    tools: ToolCaller | None
    plan: Callable[[DriftReport, datetime], list[PlannedCallLike]]
    peers: Peers
    wants: Callable[[list[str], list[str], DriftReport], bool]
    reasoner: Reasoner
    signer: Signer
    verifier: Verifier
    guardrail: GuardrailLike
    applier: ApplierLike | None = None
    """None: decide only, act on nothing (unit tests of the deciding part)."""


class DriftState(TypedDict, total=False):
    event: dict[str, Any]
    now: str
    report: dict[str, Any]
    evidence: list[dict[str, Any]]
    expected: list[str]
    answers: list[dict[str, Any]]
    unreachable: list[dict[str, str]]
    proposal: dict[str, Any]
    second_opinion: dict[str, Any] | None
    llm: dict[str, Any] | None
    verdict: dict[str, Any]
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None
    mode: str
    approval: dict[str, Any] | None
    applied: list[dict[str, Any]]
    backport_patch: str | None
    apply_error: str | None
    timings_ms: dict[str, float]


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _timed(name: str, fn: Callable[[DriftState], Awaitable[dict[str, Any]]]) -> Callable[..., Awaitable[dict]]:
    # `approve` pauses by raising LangGraph's interrupt: that is not an error of the span.
    pausing = name == "approve"

    async def node(state: DriftState) -> dict[str, Any]:
        start = time.perf_counter()
        event_id = (state.get("event") or {}).get("event_id", "")
        with _tracer.start_as_current_span(f"drift.{name}", attributes={"driftwise.event_id": event_id},
                                           record_exception=not pausing, set_status_on_exception=not pausing):
            update = await fn(state)
        timings = dict(state.get("timings_ms") or {})
        timings[name] = round((time.perf_counter() - start) * 1000, 2)
        return {**update, "timings_ms": timings}

    node.__name__ = name
    return node


def build_graph(deps: GraphDeps) -> StateGraph:
    cfg = deps.config

    async def observe(state: DriftState) -> dict[str, Any]:
        event = DriftEvent.model_validate(state["event"])
        report = await deps.observer.observe(event, deps.clock.now)
        return {"now": report.observed_at.isoformat(), "report": _dump(report), "evidence": []}

    async def gather(state: DriftState) -> dict[str, Any]:
        report = DriftReport.model_validate(state["report"])
        now = report.observed_at
        evidence = list(state.get("evidence") or [])
        if deps.tools is None:
            return {"evidence": evidence}
        tools = deps.tools
        plan = deps.plan(report, now)

        async def call(c: PlannedCallLike) -> Evidence:
            try:
                return await asyncio.wait_for(
                    tools.call(c.server, c.tool, dict(c.arguments), evidence_id=c.id, observed_at=now,
                               timeout_s=cfg.mcp_call_timeout_s),
                    timeout=cfg.mcp_call_timeout_s + 0.5,
                )
            except Exception as exc:  # the pool should not raise; if it does, the call is just missing evidence
                log.warning("evidence %s (%s.%s) failed: %r", c.id, c.server, c.tool, exc)
                return Evidence(id=c.id, source=c.server, tool=c.tool, arguments=dict(c.arguments),
                                observed_at=now, error=f"{type(exc).__name__}: {exc}"[:500])

        results = await asyncio.gather(*(call(c) for c in plan))
        # One entry per evidence id: a call made now supersedes an earlier one of the same id.
        by_id = {e["id"]: e for e in evidence}
        by_id.update({e.id: _dump(e) for e in results})
        # the namespaces' labels (regulated? frozen?) were read with the rest: the report carries them
        labels = {**report.namespace_labels, **namespace_labels(results)}
        return {"evidence": list(by_id.values()),
                "report": _dump(report.model_copy(update={"namespace_labels": labels}))}

    async def delegate(state: DriftState) -> dict[str, Any]:
        report = DriftReport.model_validate(state["report"])
        evidence = [Evidence.model_validate(e) for e in state.get("evidence") or []]
        chosen = {
            name: spec
            for name, spec in cfg.specialists.items()
            if spec.enabled and deps.wants(spec.kinds, spec.paths, report)
        }
        request = AnalysisRequest(event_id=report.event_id, requester=cfg.agent_id, report=report, evidence=evidence)

        async def ask(name: str) -> SignedRecommendation:
            spec = chosen[name]
            return await asyncio.wait_for(
                deps.peers.analyze(spec.url, request, spec.token.get_secret_value(), cfg.delegate_timeout_s),
                timeout=cfg.delegate_timeout_s,
            )

        names = sorted(chosen)
        results = await asyncio.gather(*(ask(n) for n in names), return_exceptions=True)
        answers: list[dict[str, Any]] = []
        unreachable: list[dict[str, str]] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                reason = "timeout" if isinstance(result, TimeoutError) else type(result).__name__
                detail = str(result) or f"no answer within {cfg.delegate_timeout_s}s"
                log.warning("specialist %s unreachable for %s: %s", name, report.event_id, detail)
                unreachable.append({"agent": name, "reason": reason, "detail": detail[:500]})
                continue
            # Every answer goes on to the guardrail (which discards what fails, naming why);
            # only verified ones reach the reasoner.
            answers.append(_dump(result))
            try:
                deps.verifier.verify_recommendation(result.jws, report.event_id)
            except VerificationError as exc:
                unreachable.append({"agent": name, "reason": exc.reason.value, "detail": exc.detail[:500]})
        return {"expected": names, "answers": answers, "unreachable": unreachable}

    async def reason(state: DriftState) -> dict[str, Any]:
        report = DriftReport.model_validate(state["report"])
        bad = {u["agent"] for u in state.get("unreachable") or []}
        verified: list[Recommendation] = []
        for a in state.get("answers") or []:
            signed = SignedRecommendation.model_validate(a)
            try:
                verified.append(deps.verifier.verify_recommendation(signed.jws, report.event_id))
            except VerificationError:
                continue
        out = await deps.reasoner.reason(
            ReasoningInput(
                event_id=report.event_id,
                agent=cfg.agent_id,
                report=report,
                evidence=[Evidence.model_validate(e) for e in state.get("evidence") or []],
                specialists=verified,
                unreachable_specialists=sorted(bad),
                now=report.observed_at,
                confidence_threshold=cfg.confidence_threshold,
                allow_ttl_h=cfg.allow_ttl_h,
            )
        )
        rec = out.recommendation
        if rec.agent != cfg.agent_id or rec.event_id != report.event_id:
            rec = rec.model_copy(update={"agent": cfg.agent_id, "event_id": report.event_id})
        return {
            "proposal": _dump(rec),
            "second_opinion": _dump(out.second_opinion) if out.second_opinion else None,
            "llm": _dump(out.llm) if out.llm else None,
        }

    async def sign(state: DriftState) -> dict[str, Any]:
        rec = Recommendation.model_validate(state["proposal"])
        return {"proposal": _dump(deps.signer.sign_recommendation(rec, [cfg.agent_id]))}

    async def guardrail(state: DriftState) -> dict[str, Any]:
        report = DriftReport.model_validate(state["report"])
        second = state.get("second_opinion")
        outcome = await deps.guardrail.evaluate(
            report=report,
            proposal=SignedRecommendation.model_validate(state["proposal"]),
            specialists=[SignedRecommendation.model_validate(a) for a in state.get("answers") or []],
            expected_specialists=list(state.get("expected") or []),
            now=report.observed_at,
            second_opinion=Recommendation.model_validate(second) if second else None,
        )
        signed = deps.signer.sign_verdict(outcome.verdict, [cfg.agent_id])
        return {"verdict": _dump(signed), "opa_input": outcome.opa_input, "opa_result": outcome.opa_result,
                "mode": cfg.mode_for(report.project)}

    async def request_approval(state: DriftState) -> dict[str, Any]:
        verdict = SignedVerdict.model_validate(state["verdict"]).verdict
        if deps.applier is None or not state.get("report"):
            return {"applied": list(state.get("applied") or [])}
        report = DriftReport.model_validate(state["report"])
        now = await deps.clock.now()
        try:
            done = await deps.applier.request_approval(report, verdict, _mode(state), now)
        except ApplyError as exc:  # the request is the decision itself; its annotation is a courtesy
            log.warning("approval request of %s not annotated: %s", report.event_id, exc)
            done = []
        return {"applied": [*(state.get("applied") or []), *(_dump(a) for a in done)]}

    async def approve(state: DriftState) -> dict[str, Any]:
        verdict = SignedVerdict.model_validate(state["verdict"]).verdict
        answer = interrupt({"event_id": verdict.event_id, "proposed": verdict.action.value,
                            "allowed_actions": [a.value for a in verdict.allowed_actions]})
        return {"approval": _dump(Approval.model_validate(answer))}

    async def apply(state: DriftState) -> dict[str, Any]:
        verdict = SignedVerdict.model_validate(state["verdict"]).verdict
        applied = list(state.get("applied") or [])
        now = await deps.clock.now()
        mode = _mode(state)
        approval = Approval.model_validate(state["approval"]) if state.get("approval") else None

        def nothing(**detail: Any) -> dict[str, Any]:
            return {"applied": [*applied, _dump(AppliedAction(kind="none", mode=mode, executed=False, at=now,
                                                               detail=detail))]}

        if deps.applier is None:
            return {"applied": applied}
        if approval is not None and approval.decision == "reject":
            return nothing(reason="rejected", rejected_by=approval.approver, comment=approval.comment)
        if not state.get("report"):
            return nothing(reason="no drift report: nothing can be applied")
        action = (approval.action if approval else None) or verdict.action
        report = DriftReport.model_validate(state["report"])
        try:
            done, backport = await deps.applier.apply(
                mode=mode, action=action, report=report, verdict=verdict, now=now,
                approved_by=approval.approver if approval else None)
        except ApplyError as exc:
            log.warning("applying %s for %s failed: %s", action.value, report.event_id, exc)
            update = nothing(reason="apply failed", action=action.value, error=str(exc), kind=exc.kind)
            return {**update, "apply_error": f"{exc.kind}: {exc}"}
        return {"applied": [*applied, *(_dump(a) for a in done)], "backport_patch": backport}

    def after_guardrail(state: DriftState) -> str:
        verdict = SignedVerdict.model_validate(state["verdict"]).verdict
        return "request_approval" if needs_approval(_mode(state), verdict) else "apply"

    graph = StateGraph(DriftState)
    order = [("observe", observe), ("gather", gather), ("delegate", delegate), ("reason", reason),
             ("sign", sign), ("guardrail", guardrail)]
    for name, fn in [*order, ("request_approval", request_approval), ("approve", approve), ("apply", apply)]:
        graph.add_node(name, _timed(name, fn))
    graph.add_edge(START, order[0][0])
    for (a, _), (b, _) in itertools.pairwise(order):
        graph.add_edge(a, b)
    graph.add_conditional_edges("guardrail", after_guardrail, ["request_approval", "apply"])
    graph.add_edge("request_approval", "approve")
    graph.add_edge("approve", "apply")
    graph.add_edge("apply", END)
    return graph


def _mode(state: DriftState) -> Mode:
    mode = state.get("mode") or "autonomous"
    return mode if mode in ("shadow", "advisory", "autonomous") else "autonomous"  # type: ignore[return-value]


def compile_graph(deps: GraphDeps, checkpointer: Any) -> CompiledStateGraph:
    return build_graph(deps).compile(checkpointer=checkpointer)
