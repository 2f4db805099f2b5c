"""The runner: a decision always ends in a signed verdict, within the deadline; undecided events resume."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import SecretStr

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.audit import AuditLog
from agents.drift.clock import Clock
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.errors import ObserveError
from agents.drift.graph import GraphDeps, compile_graph
from agents.drift.metrics import DriftMetrics
from agents.drift.observe import Observer
from agents.drift.reasoning.base import ReasoningInput, ReasoningOutput
from agents.drift.runner import DecisionRunner
from agents.drift.store import EventStore
from protocol.models import (
    Action,
    ArgoNotification,
    DecisionState,
    Domain,
    DriftEvent,
    DriftReport,
    Recommendation,
    Verdict,
)
from protocol.signing import Signer, TrustStore, Verifier, generate_key

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


class FakeObserver:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    async def observe(self, event: DriftEvent, clock: Callable[[], Awaitable[datetime]]) -> DriftReport:
        self.calls += 1
        now = await clock()
        if self.fail:
            raise ObserveError("argocd_unreachable", "Argo CD http://argocd: ConnectError")
        n = event.notification
        return DriftReport(event_id=event.event_id, application=n.app, project=n.project, observed_at=now)


class FakeReasoner:
    name = "fake"

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        if self.hang:
            await asyncio.sleep(3600)
        return ReasoningOutput(recommendation=Recommendation(
            event_id=inp.event_id, agent=inp.agent, domain=Domain.OPERATIONAL, action=Action.ENFORCE,
            confidence=0.95, reasoning="stub", created_at=inp.now))


class Outcome:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.opa_input: dict[str, Any] = {"stub": True}
        self.opa_result: dict[str, Any] | None = {"ok": True}


class FakeGuardrail:
    async def evaluate(self, *, report, proposal, specialists, expected_specialists, now, second_opinion=None):
        rec = proposal.recommendation
        return Outcome(Verdict(event_id=report.event_id, action=rec.action, requires_approval=False,
                               allowed_actions=[rec.action], confidence=rec.confidence, threshold=0.8,
                               decided_at=now))


class FixedClock(Clock):
    async def now(self) -> datetime:
        return NOW


def _event(app: str = "payments-api") -> DriftEvent:
    n = ArgoNotification(app=app, project="prod")
    return DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n),
                      received_at=datetime.now(UTC), notification=n)


@pytest.fixture
async def harness(tmp_path: Path):
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    config = DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                         argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr("a"),
                         decision_deadline_s=30.0, mode="autonomous")
    store = EventStore(config.db_path)
    await store.open()
    audit = AuditLog(config.db_path)
    await audit.open()
    signer = Signer("drift", key)
    async with httpx.AsyncClient() as http, AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)) as saver:
        clock = FixedClock(http, None)

        def make(observer: Any = None, reasoner: Any = None, deadline_s: float | None = None) -> DecisionRunner:
            cfg = config if deadline_s is None else config.model_copy(update={"decision_deadline_s": deadline_s})
            deps = GraphDeps(
                config=cfg, clock=clock,
                observer=observer or FakeObserver(),  # type: ignore[arg-type]
                tools=None, plan=lambda r, n: [], peers=None,  # type: ignore[arg-type]
                wants=lambda k, p, r: False, reasoner=reasoner or FakeReasoner(), signer=signer,
                verifier=Verifier(trust, "drift", replay=None), guardrail=FakeGuardrail(),
            )
            return DecisionRunner(cfg, compile_graph(deps, saver), store, audit, signer, clock, DriftMetrics())

        yield make, store, audit, trust
    await audit.close()
    await store.close()


async def _run(runner: DecisionRunner, store: EventStore, event: DriftEvent):
    decision, dup = await store.accept(event, datetime.now(UTC))
    assert not dup
    await runner.submit(decision)
    return await runner.wait(event.event_id, 5)


async def test_normal_decision_is_signed_persisted_and_audited(harness) -> None:
    make, store, audit, trust = harness
    event = _event()
    final = await _run(make(), store, event)
    assert final is not None and final.state == DecisionState.DONE and final.error is None
    verdict = Verifier(trust, "drift", replay=None).verify_verdict(final.verdict.jws, event.event_id)
    assert verdict.action == Action.ENFORCE
    assert Verifier(trust, "drift", replay=None).verify_recommendation(final.proposal.jws, event.event_id)
    assert set(final.timings_ms) >= {"observe", "gather", "delegate", "reason", "sign", "guardrail",
                                     "webhook_to_final"}
    records = await audit.records(event.event_id)
    assert len(records) == 1 and records[0].payload["opa_input"] == {"stub": True}
    assert (await audit.verify()).ok


async def test_deadline_ends_in_escalation_that_says_so(harness) -> None:
    make, store, audit, _ = harness
    started = asyncio.get_running_loop().time()
    final = await _run(make(reasoner=FakeReasoner(hang=True), deadline_s=0.5), store, _event())
    assert asyncio.get_running_loop().time() - started < 3.0  # the 0.5 s deadline, not the 30 s default
    assert final is not None and final.state == DecisionState.AWAITING_APPROVAL
    verdict = final.verdict.verdict
    assert verdict.action == Action.ESCALATE and verdict.requires_approval
    assert verdict.reasons[0].code == "failure.deadline"
    assert final.report is not None  # what was observed before the deadline is kept
    assert len(await audit.records(final.event.event_id)) == 1


async def test_observe_failure_ends_in_escalation_naming_it(harness) -> None:
    make, store, _, _ = harness
    final = await _run(make(observer=FakeObserver(fail=True)), store, _event())
    assert final is not None and final.verdict.verdict.action == Action.ESCALATE
    assert final.verdict.verdict.reasons[0].code == "failure.argocd_unreachable"
    assert "ConnectError" in (final.error or "")


async def test_undecided_events_resume_on_start(harness) -> None:
    make, store, audit, _ = harness
    events = [_event(f"app-{i}") for i in range(3)]
    for e in events:
        await store.accept(e, datetime.now(UTC))  # persisted, then the "process" died before deciding
    observer = FakeObserver()
    runner = make(observer=observer)
    assert await runner.resume_undecided() == 3
    for e in events:
        final = await runner.wait(e.event_id, 5)
        assert final is not None and final.state == DecisionState.DONE
    assert observer.calls == 3
    assert await store.undecided() == []
    assert len(await audit.records()) == 3


def test_argocd_client_is_read_only() -> None:
    # Acting on verdicts is a later step: the observe client has no write method at all.
    writes = [n for n in vars(ArgoCDClient) if n.startswith(("sync", "patch", "post", "put", "delete"))]
    assert writes == []
    assert Observer  # imported for the type of GraphDeps.observer
