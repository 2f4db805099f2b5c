"""Approvals nobody answers: a decision waits for a human at most drift.approval_timeout_h, then ends `expired`
(nothing done, audited), and a drift that persists is decided again as a new event; an approval racing the
expiry ends in exactly one of the two.

The real runner, graph, recorder, SQLite stores and checkpointer, the real Observer and re-read over the
sandbox's Argo CD API (in process), and the real Clock reading the sandbox clock, which the tests advance as
the deferred-sync tests do; only the reasoner and the guardrail are stand-ins (they have their own tests).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import SecretStr

from agents.drift.acting.store import INTENT_STEP, ActingStore
from agents.drift.app import create_app
from agents.drift.approval_wait import ApprovalWait
from agents.drift.argocd_client import ArgoCDClient
from agents.drift.audit import AuditLog
from agents.drift.clock import Clock
from agents.drift.config import NotifyConfig
from agents.drift.graph import compile_graph
from agents.drift.metrics import DriftMetrics
from agents.drift.notify import Notifier, WebhookSender
from agents.drift.notify_message import console_link
from agents.drift.observe import Observer
from agents.drift.replay import ReplayStore
from agents.drift.reread import EXPIRED_EVENT, Rereader
from agents.drift.runner import ApprovalConflict, DecisionRunner
from agents.drift.steps import GraphDeps, checkpoint_serde
from agents.drift.store import EventStore
from agents.drift.wiring import verifier_for
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import Approval, ArgoNotification, Decision, DecisionState, DriftEvent
from protocol.signing import Signer, TrustStore, generate_key
from tests.support.drift_core import FakeReasoner, PassGuardrail, drift_config
from tests.support.processes import SCENARIOS
from tests.support.webhook_receiver import Receiver

BOUND_S = 20.0
"""Bounds every wait of this module."""
DAY_S = 24 * 3600
TOKEN = "sandbox-argocd-token"


class GatedEvents(EventStore):
    """The real event store; `hold(state)` parks the next transition to `state` just before the one conditional
    write, until the test releases it: two racing paths, both past their reads, meet at that write in the
    order the test chooses."""

    gates: dict[DecisionState, tuple[asyncio.Event, asyncio.Event]]

    def hold(self, state: DecisionState) -> tuple[asyncio.Event, asyncio.Event]:
        gate = (asyncio.Event(), asyncio.Event())
        self.gates[state] = gate
        return gate

    async def transition(self, decision: Decision, expected: DecisionState) -> Decision | None:
        gate = self.gates.pop(decision.state, None)
        if gate is not None:
            arrived, release = gate
            arrived.set()
            await release.wait()
        return await super().transition(decision, expected)


@dataclass
class World:
    http: httpx.AsyncClient
    sandbox: Sandbox
    notification: ArgoNotification
    clock: Clock
    store: GatedEvents
    audit: AuditLog
    acting: ActingStore
    runner: DecisionRunner
    wait: ApprovalWait
    rereader: Rereader
    metrics: DriftMetrics
    submitted: list[Decision] = field(default_factory=list)

    async def advance(self, seconds: float) -> datetime:
        r = await self.http.post("/sandbox/clock", json={"advance_s": seconds})
        assert r.status_code == 200, r.text
        return await self.clock.now()

    async def decide(self) -> Decision:
        n = self.notification
        event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n),
                           received_at=datetime.now(UTC), notification=n)
        decision, _ = await self.store.accept(event, datetime.now(UTC), join=False)
        await self.runner.submit(decision)
        found = await self.runner.wait(event.event_id, BOUND_S)
        assert found is not None and found.state == DecisionState.AWAITING_APPROVAL, found
        return found

    async def expire_due(self) -> list[str]:
        return await self.wait.run_due(await self.clock.now(), self.rereader.reread)

    async def kinds(self, event_id: str) -> list[str]:
        return [r.kind for r in await self.audit.records(event_id)]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    scenario = sorted(sandbox.scenarios.values(), key=lambda s: s.id)[0]
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    signer = Signer("drift", key)
    config = drift_config(tmp_path, mode="advisory", approval_timeout_h=24.0)
    metrics = DriftMetrics()
    app = build_apps(sandbox)["argocd"]
    async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://argocd") as http,
                GatedEvents(config.db_path) as store, AuditLog(config.db_path) as audit,
                ActingStore(config.db_path) as acting, ReplayStore(config.db_path) as replay,
                AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)) as saver):
        store.gates = {}
        saver.serde = checkpoint_serde()
        r = await http.post("/sandbox/scenarios/activate", json={"id": scenario.id})
        assert r.status_code == 200, r.text
        clock = Clock(http, "http://argocd/sandbox/clock")
        argocd = ArgoCDClient(http, "http://argocd", TOKEN, 5.0)
        wait = ApprovalWait(store, acting, audit, timedelta(hours=24), notify=True, metrics=metrics)
        deps = GraphDeps(
            config=config, clock=clock, observer=Observer(argocd), tools=None, plan=lambda r, n: [],
            peers=None,  # type: ignore[arg-type]  # no specialist is configured: never asked
            wants=lambda k, p, r: False, reasoner=FakeReasoner(), signer=signer,
            verifier=verifier_for(config, trust), replay=replay, guardrail=PassGuardrail(),
        )
        runner = DecisionRunner(config, compile_graph(deps, saver), store, audit, signer, clock, metrics,
                                on_waiting=wait.waiting)
        submitted: list[Decision] = []

        async def submit(decision: Decision) -> None:
            submitted.append(decision)

        world = World(http, sandbox, ArgoNotification.model_validate(scenario.notification), clock, store, audit,
                      acting, runner, wait, Rereader(store, argocd, submit, metrics), metrics, submitted)
        yield world
        await runner.close()


async def test_a_decision_nobody_answers_expires_audited_and_its_persisting_drift_is_decided_anew(
        world: World) -> None:
    waiting = await world.decide()
    event_id = waiting.event.event_id
    started = await world.clock.now()
    # scheduled as it started waiting, on Driftwise's clock: its message, the half-time reminder, the end
    assert {j.kind: j.due_at for j in await world.acting.pending() if j.event_id == event_id} == {
        "notify_approval": started, "remind_approval": started + timedelta(hours=12),
        "expire_approval": started + timedelta(hours=24)}

    await world.advance(DAY_S - 1)
    assert await world.expire_due() == []
    assert (await world.store.get(event_id)).state == DecisionState.AWAITING_APPROVAL  # type: ignore[union-attr]

    now = await world.advance(1)
    assert await world.expire_due() == [event_id]
    expired = await world.store.get(event_id)
    assert expired is not None and expired.state == DecisionState.EXPIRED and expired.expired_at == now
    assert expired.approval is None and expired.applied == [] and world.sandbox.writes == []  # nothing done
    row = await world.acting.outbox_row(event_id, INTENT_STEP)
    assert row is not None and row[0] == "done" and row[1]["decision_state"] == "expired"
    assert await world.kinds(event_id) == ["decision", "expiry"]
    record = (await world.audit.records(event_id))[-1]
    assert "drift.approval_timeout_h=24" in record.payload["reason"] and record.payload["proposed"] == "enforce"
    assert record.payload["waiting_since"] == started.isoformat()
    assert world.metrics.approvals_expired._value.get() == 1

    # the drift persists (the sandbox's application is still OutOfSync): it is a new event, decided afresh
    [again] = world.submitted
    assert again.state == DecisionState.RECEIVED and again.event.event_id != event_id
    assert again.event.notification.event == EXPIRED_EVENT
    assert again.event.notification.app == waiting.event.notification.app

    # final once: an answer now is refused naming the expiry; the expiry does not run twice
    with pytest.raises(ApprovalConflict) as refused:
        await world.runner.resume(event_id, Approval(decision="approve", approver="late@example.com"), BOUND_S)
    assert refused.value.status == 409 and f"decision {event_id} is expired" in str(refused.value)
    assert await world.expire_due() == [] and await world.kinds(event_id) == ["decision", "expiry"]


async def test_the_periodic_reread_retries_the_reread_of_an_expired_decisions_drift(world: World) -> None:
    waiting = await world.decide()
    await world.advance(DAY_S)
    assert await world.wait.run_due(await world.clock.now(), None) == [waiting.event.event_id]  # no re-read now
    assert world.submitted == []
    [new] = await world.rereader.tick(await world.clock.now())  # the re-read's own tick does it
    assert world.submitted[0].event.event_id == new
    assert world.submitted[0].event.notification.event == EXPIRED_EVENT


@pytest.mark.parametrize("first", ["approval", "expiry"])
async def test_an_approval_racing_the_expiry_ends_in_exactly_one_of_them(world: World, first: str) -> None:
    waiting = await world.decide()
    event_id = waiting.event.event_id
    await world.advance(DAY_S)
    approval_at, approval_go = world.store.hold(DecisionState.APPLYING)
    expiry_at, expiry_go = world.store.hold(DecisionState.EXPIRED)
    approve = asyncio.create_task(world.runner.resume(event_id, Approval(decision="approve", approver="ana"),
                                                      BOUND_S))
    expire = asyncio.create_task(world.expire_due())
    async with asyncio.timeout(BOUND_S):
        # both read the decision waiting and reached the one conditional write: neither has written yet
        await approval_at.wait()
        await expiry_at.wait()
        winner, loser = (approval_go, expiry_go) if first == "approval" else (expiry_go, approval_go)
        winner.set()
        if first == "approval":
            assert not approve.done()  # the approval is being carried out; the expiry must lose to it
        else:
            assert await expire == [event_id]
        loser.set()
        results = await asyncio.gather(approve, expire, return_exceptions=True)
    final = await world.store.get(event_id)
    assert final is not None
    kinds = await world.kinds(event_id)
    if first == "approval":
        assert isinstance(results[0], Decision) and results[0].state == DecisionState.DONE
        assert results[1] == []  # the expiry found it answered
        assert final.state == DecisionState.DONE and final.approval is not None and final.expired_at is None
        assert "expiry" not in kinds and kinds.count("approval") == 1
    else:
        assert isinstance(results[0], ApprovalConflict) and "is expired" in str(results[0])
        assert final.state == DecisionState.EXPIRED and final.approval is None
        assert "approval" not in kinds and kinds.count("expiry") == 1
    assert await world.wait.run_due(await world.clock.now(), None) == []  # and nothing is left to expire


async def test_an_expired_decision_shows_in_the_api_and_the_console(world: World, tmp_path: Path) -> None:
    waiting = await world.decide()
    event_id = waiting.event.event_id
    await world.advance(DAY_S)
    await world.expire_due()
    cfg = drift_config(tmp_path, webhook_token=SecretStr("hook"))  # approvals token "a"

    async def resume(eid: str, approval: Approval) -> Decision:
        return await world.runner.resume(eid, approval, BOUND_S)

    async def accepted(_: Decision) -> None:
        return None

    app = create_app(cfg, world.store, DriftMetrics(), accepted, resume=resume)
    auth = {"Authorization": "Bearer a"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as api:
        shown = (await api.get(f"/v1/decisions/{event_id}", headers=auth)).json()
        assert shown["state"] == "expired" and shown["expired_at"] is not None
        listed = (await api.get("/v1/decisions", params={"state": "expired"}, headers=auth)).json()
        assert [d["event"]["event_id"] for d in listed["decisions"]] == [event_id]
        refused = await api.post(f"/v1/decisions/{event_id}/approve", json={"approver": "bo"}, headers=auth)
        assert refused.status_code == 409 and f"decision {event_id} is expired" in refused.json()["error"]
        page = await api.get("/console/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        await api.post("/console/login", data={"csrf_token": csrf, "approver": "bo", "token": "a",
                                               "next": "/console/"})
        decision_page = await api.get(f"/console/decisions/{event_id}")
        assert '<strong id="state">expired</strong>' in decision_page.text
        csrf = decision_page.text.split('name="csrf_token" value="')[1].split('"')[0]
        answer = await api.post(f"/console/decisions/{event_id}/approve", data={"csrf_token": csrf})
        assert answer.status_code == 409 and "it expired" in answer.text


async def test_a_receiver_that_hangs_holds_up_no_decision(world: World) -> None:
    waiting = await world.decide()
    async with Receiver(hang=True).serve() as rx:
        notifier = Notifier(WebhookSender(NotifyConfig(webhook_url=SecretStr(rx.url), timeout_s=60, deadline_s=120)),
                            world.store, world.acting, lambda e: console_link("http://drift", e), world.metrics)
        sending = asyncio.create_task(notifier.tick(await world.clock.now()))
        async with asyncio.timeout(BOUND_S):
            await rx.arrived.wait()  # the message is at the receiver, which does not answer
            other = await world.decide()  # a new decision is decided and waits meanwhile
            answered = await world.runner.resume(waiting.event.event_id, Approval(decision="approve", approver="ana"),
                                                 BOUND_S)
            assert answered.state == DecisionState.DONE and not sending.done()
    async with asyncio.timeout(BOUND_S):  # the receiver's shutdown ends the request it held
        await sending
    await notifier.aclose()
    assert other.state == DecisionState.AWAITING_APPROVAL
    assert {j.kind for j in await world.acting.pending() if j.event_id == waiting.event.event_id} == {
        "remind_approval", "expire_approval"}  # the message's job ended; the reminder will find it answered


async def test_decisions_waiting_from_before_the_bound_are_bounded_from_the_start_up(world: World) -> None:
    waiting = await world.decide()
    assert await world.wait.adopt(await world.clock.now()) == 0  # the recorder scheduled its jobs already
    await world.store.save(waiting.model_copy(update={"state": DecisionState.DONE}))
    older, _ = await world.store.accept(waiting.event.model_copy(update={"event_id": "from-before"}),
                                        datetime.now(UTC), join=False)
    await world.store.save(waiting.model_copy(update={"event": older.event}))  # waiting, with no jobs
    start = await world.advance(3600)
    assert await world.wait.adopt(start) == 1 and await world.wait.adopt(start) == 0
    assert {j.kind: j.due_at for j in await world.acting.pending() if j.event_id == "from-before"} == {
        "notify_approval": start, "remind_approval": start + timedelta(hours=12),
        "expire_approval": start + timedelta(hours=24)}
