"""The runner: a decision always ends in a signed verdict, within the deadline; undecided events resume.

Everything but Argo CD and the reasoner is the real thing: graph, steps, runner, recorder, replay
cache, SQLite stores, LangGraph's SQLite checkpointer with the drift agent's serializer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.drift.argocd_client import ArgoCDClient
from agents.drift.config import ApproverRule, ConsoleConfig
from agents.drift.observe import Observer
from agents.drift.runner import ApprovalConflict, DecisionRunner
from agents.drift.steps import DriftState, checkpoint_serde
from agents.drift.store import EventStore
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import (
    Action,
    Approval,
    ArgoNotification,
    DecisionState,
    DriftEvent,
    DriftReport,
    Identity,
    SignedVerdict,
)
from protocol.signing import Verifier
from tests.support.drift_core import FakeObserver, FakeReasoner, FixedClock, event
from tests.support.processes import SCENARIOS


async def _run(runner: DecisionRunner, store: EventStore, ev: DriftEvent):
    decision, dup = await store.accept(ev, datetime.now(UTC))
    assert not dup
    await runner.submit(decision)
    return await runner.wait(ev.event_id, 10)


async def test_normal_decision_is_signed_persisted_and_audited(harness) -> None:
    make, store, audit, trust, _, _ = harness
    ev = event()
    final = await _run(make(), store, ev)
    assert final is not None and final.state == DecisionState.DONE and final.error is None
    verdict = Verifier(trust, "drift").verify_verdict(final.verdict.jws, ev.event_id)
    assert verdict.action == Action.ENFORCE
    assert Verifier(trust, "drift").verify_recommendation(final.proposal.jws, ev.event_id).action == Action.ENFORCE
    assert set(final.timings_ms) >= {"observe", "gather", "delegate", "reason", "sign", "guardrail", "apply",
                                     "webhook_to_final"}
    records = await audit.records(ev.event_id)
    assert [r.kind for r in records] == ["decision"]
    assert records[0].payload["opa_input"] == {"specialists": 0}
    assert records[0].payload["verdict"]["jws"] == final.verdict.jws
    assert (await audit.verify()).ok


async def test_the_checkpointed_state_holds_the_models_and_reads_back_typed(harness, caplog) -> None:
    make, store, _, _, _, config = harness
    ev, waiting = event(), event("waits-for-a-human")
    runner = make()
    await _run(runner, store, ev)
    escalated = await _run(make(observer=FakeObserver(fail=True)), store, waiting)
    assert escalated is not None and escalated.state == DecisionState.AWAITING_APPROVAL
    approved = await runner.resume(waiting.event_id, Approval(decision="approve", approver="sre@example.com"), 10)
    assert approved.state == DecisionState.DONE and approved.approval is not None
    # LangGraph's serializer rebuilt every model it wrote, and was asked for no type outside its allowlist
    assert not [r for r in caplog.records if "allowed_msgpack_modules" in r.getMessage()]
    thread = {"configurable": {"thread_id": ev.event_id}}
    # a second connection to the same file: what a restarted process reads
    async with AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)) as fresh:
        fresh.serde = checkpoint_serde()
        tuple_ = await fresh.aget_tuple(thread)
    assert tuple_ is not None
    channels = tuple_.checkpoint["channel_values"]
    assert isinstance(channels["event"], DriftEvent) and channels["event"] == ev
    assert isinstance(channels["report"], DriftReport)
    assert isinstance(channels["verdict"], SignedVerdict)
    state = DriftState.model_validate(channels)
    assert state.verdict is not None and state.verdict.verdict.action == Action.ENFORCE and state.acted


async def test_every_answer_meets_the_projects_approvers_and_the_audit_records_who_and_how(harness) -> None:
    """The console and the API both answer through resume: the rule is applied there, to every identity."""
    make, store, audit, _, _, _ = harness
    rules = ConsoleConfig(approvers={"prod": ApproverRule(users=["sre@example.com"], groups=["sre-prod"]),
                                     "*": ApproverRule(groups=["platform"])})
    waiting, elsewhere = event(), event("billing")
    elsewhere = elsewhere.model_copy(update={"notification": elsewhere.notification.model_copy(
        update={"project": "billing"})})
    runner = make(observer=FakeObserver(fail=True), console=rules)
    for ev in (waiting, elsewhere):
        assert (await _run(runner, store, ev)).state == DecisionState.AWAITING_APPROVAL
    mallory = Identity(user="mallory", groups=["dev"], via="proxy", peer="10.0.0.7")
    for ev, identity in ((waiting, None), (waiting, mallory), (elsewhere, None)):
        answer = Approval(decision="approve", approver="mallory", identity=identity)
        with pytest.raises(ApprovalConflict) as refused:
            await runner.resume(ev.event_id, answer, 10)
        key = "prod" if ev is waiting else "*"
        assert refused.value.status == 403 and f"console.approvers.{key} allows only" in str(refused.value)
    assert [r.kind for r in await audit.records(waiting.event_id)] == ["decision"]  # refusals record nothing
    # a name given with the approvals token (the CLI's --approver) meets `users`, case-insensitively
    done = await runner.resume(waiting.event_id, Approval(decision="reject", approver="SRE@example.com",
                                                          comment="keep it"), 10)
    assert done.approval is not None and done.approval.identity == Identity(user="SRE@example.com",
                                                                            via="approvals_token")
    (approval,) = [r for r in await audit.records(waiting.event_id) if r.kind == "approval"]
    assert approval.payload["approval"]["identity"] == {"user": "SRE@example.com", "email": None, "groups": [],
                                                        "via": "approvals_token", "peer": None}
    # a proxy's identity meets a rule by its groups (`*`: every project not listed)
    platform = Identity(user="kim", email="kim@example.com", groups=["platform"], via="proxy", peer="10.0.0.7")
    answered = await runner.resume(elsewhere.event_id, Approval(decision="reject", approver="kim",
                                                                identity=platform, comment="no"), 10)
    assert answered.approval is not None and answered.approval.identity == platform
    (approval,) = [r for r in await audit.records(elsewhere.event_id) if r.kind == "approval"]
    assert approval.payload["approval"]["identity"]["via"] == "proxy"
    assert (await audit.verify()).ok


async def test_deadline_ends_in_escalation_that_says_so(harness) -> None:
    make, store, audit, _, _, _ = harness
    async with asyncio.timeout(20):  # bounds the test, far above the 0.5 s deadline under test
        final = await _run(make(reasoner=FakeReasoner(hang=True), deadline_s=0.5), store, event())
    assert final is not None and final.state == DecisionState.AWAITING_APPROVAL
    verdict = final.verdict.verdict
    assert verdict.action == Action.ESCALATE and verdict.requires_approval
    assert verdict.reasons[0].code == "failure.deadline" and "decision_deadline_s=0.5" in verdict.reasons[0].message
    assert final.report is not None  # what was observed before the deadline is kept
    records = await audit.records(final.event.event_id)
    assert [r.kind for r in records] == ["decision"]
    assert records[0].payload["failure"]["kind"] == "deadline"


async def test_observe_failure_ends_in_escalation_naming_it(harness) -> None:
    make, store, audit, _, _, _ = harness
    final = await _run(make(observer=FakeObserver(fail=True)), store, event())
    assert final is not None and final.verdict.verdict.action == Action.ESCALATE
    assert final.state == DecisionState.AWAITING_APPROVAL
    assert final.verdict.verdict.reasons[0].code == "failure.argocd_unreachable"
    assert "ConnectError" in (final.error or "")
    [record] = await audit.records(final.event.event_id)
    assert record.payload["failure"] == {"kind": "argocd_unreachable",
                                         "message": "Argo CD http://argocd: ConnectError"}


async def test_undecided_events_resume_on_start(harness) -> None:
    make, store, audit, _, _, _ = harness
    events = [event(f"app-{i}") for i in range(3)]
    for e in events:
        await store.accept(e, datetime.now(UTC))  # persisted, then the "process" died before deciding
    observer = FakeObserver()
    runner = make(observer=observer)
    assert await runner.take_over() == 3
    for e in events:
        final = await runner.wait(e.event_id, 10)
        assert final is not None and final.state == DecisionState.DONE
    assert observer.calls == 3
    assert await store.undecided() == []
    assert len(await audit.records()) == 3


async def test_observing_reads_argo_cd_and_writes_nothing() -> None:
    """The observe client against the sandbox's Argo CD API (in process): only GETs, and no write recorded."""
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    scenario = sorted(sandbox.scenarios.values(), key=lambda s: s.id)[0]
    methods: list[str] = []

    async def seen(request: httpx.Request) -> None:
        methods.append(request.method)

    app = build_apps(sandbox)["argocd"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://argocd",
                                 event_hooks={"request": [seen]}) as http:
        r = await http.post("/sandbox/scenarios/activate", json={"id": scenario.id})
        assert r.status_code == 200, r.text
        methods.clear()
        ev = DriftEvent(event_id="evt-read-only", idempotency_key="k", received_at=datetime.now(UTC),
                        notification=ArgoNotification.model_validate(scenario.notification))
        report = await Observer(ArgoCDClient(http, "http://argocd", "sandbox-argocd-token", 5.0)).observe(
            ev, FixedClock(http, None).now)
    assert report.drifts  # it did read the drifted resources
    assert methods and set(methods) == {"GET"}
    assert sandbox.writes == []
