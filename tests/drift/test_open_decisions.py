"""One open decision per application drift, through the real app, runner, graph, admission and stores.

Argo CD is the sandbox's (its real API shape, served in process); only the reasoner and the guardrail
are stand-ins, so that a test can hold a decision in `deciding` and choose whether it needs a human.
Each branch of agents.drift.open_rule's table is driven through the webhook or the re-read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import SecretStr

from agents.drift.acting.store import ActingStore
from agents.drift.admission import Admission
from agents.drift.app import create_app
from agents.drift.argocd_client import ArgoCDClient
from agents.drift.audit import AuditLog
from agents.drift.clock import Clock
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.graph import compile_graph
from agents.drift.metrics import DriftMetrics
from agents.drift.observe import Observer
from agents.drift.reasoning.base import ReasoningInput, ReasoningOutput
from agents.drift.replay import ReplayStore
from agents.drift.reread import Rereader
from agents.drift.runner import DecisionRunner
from agents.drift.steps import GraphDeps, checkpoint_serde
from agents.drift.store import EventStore
from agents.drift.wiring import verifier_for
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import Action, Decision, DecisionState, Domain, Recommendation, Verdict
from protocol.signing import Signer, TrustStore, generate_key
from tests.support.processes import SCENARIOS

SCENARIO = SCENARIOS / "v01-payments-emergency-scale-up.yaml"
NOTE: dict[str, Any] = yaml.safe_load(SCENARIO.read_text())["notification"]
HOOK = {"Authorization": "Bearer hook"}
API = {"Authorization": "Bearer approve"}
BOUND_S = 10.0


class GatedReasoner:
    """Enforce at 0.95, once the test opens the gate: holds a decision in `deciding` meanwhile."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.calls = 0

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        return ReasoningOutput(recommendation=Recommendation(
            event_id=inp.event_id, agent=inp.agent, domain=Domain.OPERATIONAL, action=Action.ENFORCE,
            confidence=0.95, reasoning="stand-in", created_at=inp.now))


class Outcome:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.opa_input: dict[str, Any] = {}
        self.opa_result: dict[str, Any] | None = {}


class Guardrail:
    """Asks a human when `needs_human` (the decision then awaits approval), else lets the enforce stand."""

    needs_human = True

    async def evaluate(self, *, report, proposal, specialists, expected_specialists, now, second_opinion=None):
        rec = proposal.recommendation
        return Outcome(Verdict(event_id=report.event_id, action=rec.action, requires_approval=self.needs_human,
                               allowed_actions=[Action.ENFORCE, Action.ESCALATE], confidence=rec.confidence,
                               threshold=0.8, decided_at=now))


class ScenarioClock(Clock):
    async def now(self) -> datetime:
        return datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


@dataclass
class System:
    client: httpx.AsyncClient
    argo: httpx.AsyncClient
    store: EventStore
    audit: AuditLog
    acting: ActingStore
    admission: Admission
    reasoner: GatedReasoner
    guardrail: Guardrail
    rereader: Rereader

    async def notify(self, **over: str) -> dict[str, Any]:
        r = await self.client.post("/v1/webhooks/argocd", json={**NOTE, **over}, headers=HOOK)
        assert r.status_code == 202, r.text
        return r.json()

    async def final(self, event_id: str) -> Decision:
        r = await self.client.get(f"/v1/decisions/{event_id}", params={"wait": str(BOUND_S)}, headers=API)
        assert r.status_code == 200, r.text
        decision = Decision.model_validate(r.json())
        assert decision.final, decision.state
        return decision

    async def scale(self, replicas: int) -> None:
        """Someone edits the live Deployment again: the drift itself changes."""
        r = await self.argo.post("/sandbox/live", json={
            "application": NOTE["app"], "kind": "Deployment", "name": NOTE["app"], "namespace": "payments",
            "patch": {"spec": {"replicas": replicas}}})
        assert r.status_code == 200, r.text

    async def decisions(self) -> list[Decision]:
        return await self.store.list(NOTE["app"])

    async def answer(self, event_id: str, what: str) -> httpx.Response:
        return await self.client.post(f"/v1/decisions/{event_id}/{what}", json={"approver": "sre"}, headers=API)


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    sandbox = Sandbox()
    sandbox.load([SCENARIO])
    await sandbox.activate(yaml.safe_load(SCENARIO.read_text())["id"])
    config = DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                         argocd=ArgoCDConfig(url="http://argocd"), approvals_token=SecretStr("approve"),
                         webhook_token=SecretStr("hook"), decision_deadline_s=BOUND_S, mode="autonomous")
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    signer = Signer("drift", key)
    store, audit, acting = EventStore(config.db_path), AuditLog(config.db_path), ActingStore(config.db_path)
    replay = ReplayStore(config.db_path)
    for s in (store, audit, acting, replay):
        await s.open()
    reasoner, guardrail = GatedReasoner(), Guardrail()
    argo_transport = httpx.ASGITransport(app=build_apps(sandbox)["argocd"])
    async with (httpx.AsyncClient(transport=argo_transport, base_url="http://argocd") as argo,
                AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)) as saver):
        saver.serde = checkpoint_serde()
        argocd = ArgoCDClient(argo, "http://argocd", sandbox.tokens.argocd, 5.0)
        deps = GraphDeps(config=config, clock=ScenarioClock(argo, None), observer=Observer(argocd), tools=None,
                         plan=lambda r, n: [], peers=None,  # type: ignore[arg-type]
                         wants=lambda k, p, r: False, reasoner=reasoner, signer=signer,
                         verifier=verifier_for(config, trust), replay=replay, guardrail=guardrail)
        runner = DecisionRunner(config, compile_graph(deps, saver), store, audit, signer, deps.clock, DriftMetrics())
        admission = Admission(store, argocd, audit, runner.submit, runner.wait, jobs=acting, wait_bound_s=BOUND_S)

        async def resume(event_id: str, approval: Any) -> Decision:
            return await runner.resume(event_id, approval, BOUND_S)

        async def wait(event_id: str, timeout_s: float, until_verdict: bool) -> Decision | None:
            return await admission.wait(event_id, timeout_s, until_verdict)

        app = create_app(config, store, DriftMetrics(), admission.submit, resume=admission.guarded(resume), wait=wait)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as client:
            yield System(client, argo, store, audit, acting, admission, reasoner, guardrail,
                         Rereader(store, argocd, admission.submit))
        await admission.close()
        await runner.close()
    for s in (store, audit, acting, replay):
        await s.close()


async def _started(reasoner: GatedReasoner) -> None:
    async with asyncio.timeout(BOUND_S):
        await reasoner.started.wait()


async def test_replays_while_deciding_awaiting_and_after_the_end_make_one_decision(system: System) -> None:
    system.reasoner.gate.clear()
    first = await system.notify()
    await _started(system.reasoner)
    while_deciding = [await system.notify() for _ in range(5)]
    assert {a["event_id"] for a in while_deciding} == {first["event_id"]}
    assert all(a["duplicate"] for a in while_deciding)
    system.reasoner.gate.set()
    assert (await system.final(first["event_id"])).state == DecisionState.AWAITING_APPROVAL
    while_awaiting = [await system.notify() for _ in range(5)]
    assert {a["event_id"] for a in while_awaiting} == {first["event_id"]}
    assert (await system.answer(first["event_id"], "reject")).status_code == 200
    ended = await system.final(first["event_id"])
    assert ended.state == DecisionState.DONE
    # after the end the intake cannot know the drift is the same: a new event, which admission reads and
    # joins to the ended decision (repeats meanwhile join that new event at intake, and so the same)
    after_end = [await system.notify() for _ in range(5)]
    assert after_end[0]["duplicate"] is False and after_end[0]["event_id"] != first["event_id"]
    for a in after_end:
        joined = await system.final(a["event_id"])
        assert joined.event.event_id == first["event_id"] and joined.state == DecisionState.DONE
    decisions = await system.decisions()
    assert [d.event.event_id for d in decisions] == [first["event_id"]]  # one drift: one decision
    assert system.reasoner.calls == 1
    decided = [r for r in await system.audit.records() if r.kind == "decision"]
    assert len(decided) == 1
    # no spurious approval was asked after the end
    assert await system.store.count_state(DecisionState.AWAITING_APPROVAL.value) == 0


async def test_a_changed_drift_after_the_end_is_a_new_decision_and_supersedes_nothing(system: System) -> None:
    system.guardrail.needs_human = False
    first = await system.final((await system.notify())["event_id"])
    assert first.state == DecisionState.DONE
    await system.scale(20)
    second = await system.final((await system.notify())["event_id"])
    assert second.event.event_id != first.event.event_id and second.state == DecisionState.DONE
    assert (await system.store.get(first.event.event_id)).state == DecisionState.DONE  # type: ignore[union-attr]
    assert len(await system.decisions()) == 2


async def test_a_changed_drift_supersedes_the_open_decision_and_withdraws_its_approval(system: System) -> None:
    old = await system.final((await system.notify())["event_id"])
    assert old.state == DecisionState.AWAITING_APPROVAL
    now = datetime(2026, 11, 20, 16, 31, tzinfo=UTC)
    assert await system.rereader.tick(now) == []  # the same drift: left alone
    await system.scale(20)
    # the webhook joins by application and revision; the re-read reads the drift and sees it changed
    assert (await system.notify())["event_id"] == old.event.event_id
    [new_id] = await system.rereader.tick(now)
    new = await system.final(new_id)
    assert new.state == DecisionState.AWAITING_APPROVAL and new.report is not None
    assert {c.after for d in new.report.drifts for c in d.changes} >= {20}
    ended = await system.store.get(old.event.event_id)
    assert ended is not None and ended.state == DecisionState.SUPERSEDED and ended.superseded_by == new_id
    [record] = [r for r in await system.audit.records(old.event.event_id) if r.kind == "supersede"]
    assert record.payload["superseded_by"] == new_id and record.payload["approval_withdrawn"] is True
    refused = await system.answer(old.event.event_id, "approve")
    assert refused.status_code == 409 and refused.json()["superseded_by"] == new_id
    assert new_id in refused.json()["error"]
    assert await system.store.count_state(DecisionState.AWAITING_APPROVAL.value) == 1  # only the new one
    assert (await system.audit.verify()).ok


async def test_a_decision_in_flight_is_not_superseded_the_new_drift_waits_for_it(system: System) -> None:
    system.reasoner.gate.clear()
    old_id = (await system.notify())["event_id"]
    await _started(system.reasoner)
    await system.scale(20)
    # a notification of another revision is a new event at intake; the re-read leaves a running decision be
    assert await system.rereader.tick(datetime(2026, 11, 20, 16, 31, tzinfo=UTC)) == []
    new_id = (await system.notify(revision="9d1f7c2"))["event_id"]
    assert new_id != old_id
    assert (await system.store.get(old_id)).state == DecisionState.DECIDING  # type: ignore[union-attr]
    assert (await system.store.get(new_id)).state == DecisionState.RECEIVED  # type: ignore[union-attr]
    system.reasoner.gate.set()
    new = await system.final(new_id)
    old = await system.store.get(old_id)
    assert old is not None and old.verdict is not None  # it finished deciding first ...
    assert old.state == DecisionState.SUPERSEDED and old.superseded_by == new_id  # ... then was superseded
    [record] = [r for r in await system.audit.records(old_id) if r.kind == "supersede"]
    assert record.payload["previous_state"] == DecisionState.AWAITING_APPROVAL.value
    assert new.state == DecisionState.AWAITING_APPROVAL and system.reasoner.calls == 2


async def test_an_approval_and_a_supersede_of_one_decision_never_both_happen(system: System) -> None:
    old_id = (await system.notify())["event_id"]
    assert (await system.final(old_id)).state == DecisionState.AWAITING_APPROVAL
    await system.scale(20)
    # both at once: whichever takes the application's lock first wins, the other sees it and stands back
    approval, new_ids = await asyncio.gather(
        system.answer(old_id, "approve"), system.rereader.tick(datetime(2026, 11, 20, 16, 31, tzinfo=UTC)))
    [new_id] = new_ids
    await system.final(new_id)
    old = await system.store.get(old_id)
    assert old is not None
    if approval.status_code == 200:
        assert old.state == DecisionState.DONE and old.approval is not None and old.superseded_by is None
    else:
        assert approval.status_code == 409 and approval.json()["superseded_by"] == new_id
        assert old.state == DecisionState.SUPERSEDED and old.approval is None


async def test_an_unknown_application_ends_in_its_own_state_never_as_an_approval(system: System) -> None:
    ack = await system.notify(app="no-such-app")
    ended = await system.final(ack["event_id"])
    assert ended.state == DecisionState.UNKNOWN_APPLICATION and ended.verdict is None
    assert "no-such-app" in (ended.error or "")
    [record] = await system.audit.records(ack["event_id"])
    assert record.kind == "decision" and record.payload["state"] == "unknown_application"
    listed = await system.client.get("/v1/decisions", params={"state": "unknown_application"}, headers=API)
    assert [d["event"]["event_id"] for d in listed.json()["decisions"]] == [ack["event_id"]]
    assert await system.store.count_state(DecisionState.AWAITING_APPROVAL.value) == 0
    assert (await system.answer(ack["event_id"], "approve")).status_code == 409
    retries = [await system.notify(app="no-such-app") for _ in range(3)]
    for retry in retries:  # Argo CD retries: each joins the one decision that says it is unknown
        assert (await system.final(retry["event_id"])).event.event_id == ack["event_id"]
    assert len(await system.store.list("no-such-app")) == 1
    assert system.reasoner.calls == 0


async def test_an_answer_is_checked_like_the_webhook_before_it_reaches_the_runner(system: System) -> None:
    event_id = (await system.notify())["event_id"]
    assert (await system.final(event_id)).state == DecisionState.AWAITING_APPROVAL
    url = f"/v1/decisions/{event_id}/approve"
    json_type = {**API, "Content-Type": "application/json"}
    deep = await system.client.post(url, content=b"[" * 2000, headers=json_type)
    assert deep.status_code == 400 and "nests deeper" in deep.json()["error"]
    typed = await system.client.post(url, content=b'{"approver": "sre"}', headers={**API, "Content-Type": "text/plain"})
    assert typed.status_code == 415
    bad = await system.client.post(url, json={"approver": "sre", "action": "delete"}, headers=API)
    assert bad.status_code == 422 and bad.json()["field"] == "action"
    for field, forged in (("approver", "sre\u202e"), ("approver", "sre\x1b[2K"), ("comment", "ok\x00")):
        body = {"approver": "sre", "action": "enforce", field: forged}
        refused = await system.client.post(url, json=body, headers=API)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
        assert "control" in refused.json()["error"]
    other = await system.client.post(url, json={"approver": "sre", "action": "allow"}, headers=API)
    assert other.status_code == 409 and other.json()["allowed_actions"] == ["enforce", "escalate"]
    assert (await system.store.get(event_id)).state == DecisionState.AWAITING_APPROVAL  # type: ignore[union-attr]
