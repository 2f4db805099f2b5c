"""A crash while acting: the decision resumes to its end, never decides again, and Argo CD is synced once.

The drift agent's own parts all run (graph, runner, recorder, Applier with its SQLite outbox, LangGraph's
SQLite checkpointer) against the sandbox's Argo CD API in process. The crash is a fault from outside
the agent: the transport to Argo CD kills the "process" right before or right after the sync goes
out (the exception escapes the whole decision, nothing after it runs), and a new runner over the same
files resumes, as a restarted process does — Applier.recover first, then take_over.
Exactly-once is checked against the sandbox's own write record, not against anything of the agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.drift.acting.applier import Applier
from agents.drift.acting.argocd_writes import ArgoCDWriter
from agents.drift.acting.store import ActingStore
from agents.drift.argocd_client import ArgoCDClient
from agents.drift.audit import AuditLog
from agents.drift.errors import ObserveError
from agents.drift.graph import compile_graph
from agents.drift.metrics import DriftMetrics
from agents.drift.observe import Observer
from agents.drift.replay import ReplayStore
from agents.drift.runner import DecisionRunner
from agents.drift.steps import GraphDeps, checkpoint_serde
from agents.drift.store import EventStore
from agents.drift.wiring import verifier_for
from driftwise.sandbox.app import build_apps
from driftwise.sandbox.state import Sandbox
from protocol.models import Action, ArgoNotification, Decision, DecisionState, DriftEvent
from protocol.signing import Signer, TrustStore, generate_key
from tests.support.drift_core import FakeReasoner, FixedClock, PassGuardrail, drift_config
from tests.support.processes import SCENARIOS

SCENARIO = "v01-payments-emergency-scale-up"
TOKEN = "sandbox-argocd-token"


class Killed(BaseException):
    """Stands for the process dying (a BaseException: nothing in the agent may catch it, as with kill -9)."""


class DyingTransport(httpx.AsyncBaseTransport):
    """The sandbox's Argo CD in process; with `die` set, the process dies at the (non-dry-run) sync."""

    def __init__(self, app: object) -> None:
        self._inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.die: Literal["before", "after"] | None = None
        self.hold: asyncio.Event | None = None
        """While set to an unset Event, the sync waits for it: Argo CD holding the request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real_sync = request.method == "POST" and request.url.path.endswith("/sync") and b'"dryRun":true' not in (
            request.content.replace(b" ", b""))
        if real_sync and self.die == "before":
            raise Killed
        if real_sync and self.hold is not None:
            await self.hold.wait()
        response = await self._inner.handle_async_request(request)
        if real_sync and self.die == "after":
            await response.aread()
            raise Killed
        return response


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, DyingTransport, Path]]:
    sandbox = Sandbox()
    sandbox.load([SCENARIOS])
    transport = DyingTransport(build_apps(sandbox)["argocd"])
    async with httpx.AsyncClient(transport=transport, base_url="http://argocd") as http:
        r = await http.post("/sandbox/scenarios/activate", json={"id": SCENARIO})
        assert r.status_code == 200, r.text
    yield sandbox, transport, tmp_path


class WatchedStore(EventStore):
    """The real event store; the test also sees each decision saved as in flight (it watches, never steers)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.in_flight: asyncio.Queue[Decision] = asyncio.Queue()

    async def save(self, decision: Decision) -> None:
        await super().save(decision)
        if decision.state == DecisionState.APPLYING and decision.error:
            self.in_flight.put_nowait(decision)


class FlakyClock(FixedClock):
    """The sandbox's clock, unreadable on the calls listed (1-based): what a loaded sandbox answered in a burst."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls = 0
        self.fail_on: set[int] = set()

    async def now(self) -> datetime:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ObserveError("clock", "sandbox clock http://argocd/sandbox/clock unreadable: ReadError")
        return await super().now()


class Process:
    """What one drift-agent process holds over the state folder: opened by `start`, dropped by `stop`."""

    def __init__(self, transport: DyingTransport, state_dir: Path, deadline_s: float = 10.0) -> None:
        self.config = drift_config(state_dir, mode="autonomous", decision_deadline_s=deadline_s)
        self.transport = transport

    async def start(self) -> DecisionRunner:
        cfg = self.config
        key = generate_key("drift")
        trust = TrustStore()
        trust.add("drift", key)
        signer = Signer("drift", key)
        self.http = httpx.AsyncClient(transport=self.transport)
        self.store = WatchedStore(cfg.db_path)
        self.audit = AuditLog(cfg.db_path)
        self.replay = ReplayStore(cfg.db_path)
        self.acting = ActingStore(cfg.db_path)
        for part in (self.store, self.audit, self.replay, self.acting):
            await part.open()
        self.saver_cm = AsyncSqliteSaver.from_conn_string(str(cfg.checkpoint_path))
        saver = await self.saver_cm.__aenter__()
        saver.serde = checkpoint_serde()
        argocd = ArgoCDClient(self.http, "http://argocd", TOKEN, 5.0)

        async def get_app(name: str, ns: str) -> dict:
            return await argocd.application_json(name, ns or None)

        self.applier = Applier(ArgoCDWriter(self.http, "http://argocd", TOKEN, 5.0), get_app, self.acting,
                               timedelta(hours=1))
        clock = self.clock = FlakyClock(self.http, None)
        self.reasoner = FakeReasoner()
        deps = GraphDeps(config=cfg, clock=clock, observer=Observer(argocd), tools=None, plan=lambda r, n: [],
                         peers=None, wants=lambda k, p, r: False,  # type: ignore[arg-type]
                         reasoner=self.reasoner, signer=signer, verifier=verifier_for(cfg, trust),
                         replay=self.replay, guardrail=PassGuardrail(), applier=self.applier)
        return DecisionRunner(cfg, compile_graph(deps, saver), self.store, self.audit, signer, clock, DriftMetrics())

    async def stop(self) -> None:
        await self.saver_cm.__aexit__(None, None, None)
        for part in (self.store, self.audit, self.replay, self.acting):
            await part.close()
        await self.http.aclose()


def _event(sandbox: Sandbox, event_id: str) -> DriftEvent:
    n = ArgoNotification.model_validate(sandbox.scenarios[SCENARIO].notification)
    return DriftEvent(event_id=event_id, idempotency_key=DriftEvent.key_for(n), received_at=datetime.now(UTC),
                      notification=n)


def _syncs(sandbox: Sandbox, event_id: str) -> list[bool]:
    """The dry-run flags of every sync Argo CD received for this event, from the sandbox's write record."""
    out = []
    for w in sandbox.writes:
        body = w.body if isinstance(w.body, dict) else {}
        infos = body.get("infos") or []
        if w.path.endswith("/sync") and {"name": "driftwise-event", "value": event_id} in infos:
            out.append(bool(body.get("dryRun")))
    return out


@pytest.mark.parametrize("die", ["before", "after"], ids=["killed-before-the-sync", "killed-after-the-sync"])
async def test_a_crash_at_the_sync_resumes_to_one_sync_and_one_record(world, die: str) -> None:
    sandbox, transport, state_dir = world
    event = _event(sandbox, "evt-crash")

    first = Process(transport, state_dir)
    runner = await first.start()
    decision, _ = await first.store.accept(event, datetime.now(UTC))
    transport.die = die  # type: ignore[assignment]
    await runner.submit(decision)
    with pytest.raises(Killed):
        await runner._tasks[event.event_id]  # the "process" dies with its decision mid-action
    assert (await first.store.get(event.event_id)).state == DecisionState.APPLYING  # the intent, recorded
    await first.stop()
    assert _syncs(sandbox, event.event_id) == ([True, False] if die == "after" else [True])

    transport.die = None
    second = Process(transport, state_dir)
    runner = await second.start()
    await second.applier.recover(datetime.now(UTC))
    assert await runner.take_over() == 1
    final = await runner.wait(event.event_id, 10)
    try:
        assert final is not None and final.state == DecisionState.DONE, final
        assert final.verdict is not None and final.verdict.verdict.action == Action.ENFORCE
        assert _syncs(sandbox, event.event_id) == [True, False]  # one dry run, one sync, across the crash
        recorded = [(a.kind, a.executed) for a in final.applied if a.kind in ("dry_run_sync", "sync")]
        assert recorded == [("dry_run_sync", True), ("sync", True)]  # the record matches Argo CD's writes
        assert [r.kind for r in await second.audit.records(event.event_id)] == ["decision", "apply"]
        assert (await second.audit.verify()).ok
    finally:
        await second.stop()


async def test_the_deadline_during_a_held_sync_keeps_the_verdict_and_records_the_sync(world) -> None:
    sandbox, transport, state_dir = world
    event = _event(sandbox, "evt-held")
    proc = Process(transport, state_dir, deadline_s=1.0)
    runner = await proc.start()
    try:
        transport.hold = asyncio.Event()
        decision, _ = await proc.store.accept(event, datetime.now(UTC))
        await runner.submit(decision)
        async with asyncio.timeout(15):  # bounds the test; the 1 s deadline passes inside it
            current = await proc.store.in_flight.get()
        # the deadline stopped the wait, not the action: the verdict stands, the decision is in flight
        assert current.state == DecisionState.APPLYING and "in flight" in current.error
        assert current.verdict is not None and current.verdict.verdict.action == Action.ENFORCE
        assert await proc.audit.records(event.event_id) == []  # not final: no decision record yet
        transport.hold.set()  # Argo CD answers
        final = await runner.wait(event.event_id, 10)
        assert final is not None and final.state == DecisionState.DONE and final.error is None, final
        assert final.verdict.verdict.action == Action.ENFORCE
        assert _syncs(sandbox, event.event_id) == [True, False]
        assert [(a.kind, a.executed) for a in final.applied if a.kind == "sync"] == [("sync", True)]
        assert [r.kind for r in await proc.audit.records(event.event_id)] == ["decision", "apply"]
    finally:
        transport.hold = None
        await proc.stop()


async def test_a_lost_thread_after_the_verdict_acts_on_the_recorded_verdict_and_never_decides_again(world) -> None:
    sandbox, transport, state_dir = world
    event = _event(sandbox, "evt-lost-thread")
    first = Process(transport, state_dir)
    runner = await first.start()
    decision, _ = await first.store.accept(event, datetime.now(UTC))
    transport.die = "before"
    await runner.submit(decision)
    with pytest.raises(Killed):
        await runner._tasks[event.event_id]
    await first.stop()
    recorded = (await _read_decision(state_dir, event.event_id)).verdict
    assert recorded is not None and recorded.verdict.action == Action.ENFORCE
    # the checkpoints are gone (a lost disk, a restore from backup)
    await asyncio.to_thread(_remove, *(Path(f"{first.config.checkpoint_path}{s}") for s in ("", "-wal", "-shm")))

    transport.die = None
    second = Process(transport, state_dir)
    runner = await second.start()
    try:
        await second.applier.recover(datetime.now(UTC))
        assert await runner.take_over() == 1
        final = await runner.wait(event.event_id, 10)
        assert final is not None and final.state == DecisionState.DONE, final
        assert final.verdict == recorded  # the recorded verdict, not a new one
        assert second.reasoner.seen == []  # nothing was decided again
        assert _syncs(sandbox, event.event_id) == [True, False]
        assert [r.kind for r in await second.audit.records(event.event_id)] == ["decision", "apply"]
    finally:
        await second.stop()


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def _read_decision(state_dir: Path, event_id: str) -> Decision:
    async with EventStore(drift_config(state_dir).db_path) as store:
        found = await store.get(event_id)
    assert found is not None
    return found


@pytest.mark.parametrize("failures", [1, 2], ids=["fails-once-then-acts", "fails-twice-and-ends-failed"])
async def test_a_failure_while_acting_never_rewrites_the_verdict(world, failures: int) -> None:
    sandbox, transport, state_dir = world
    event = _event(sandbox, f"evt-acting-fails-{failures}")
    proc = Process(transport, state_dir)
    runner = await proc.start()
    try:
        proc.clock.fail_on = {2, 3}.intersection(range(2, 2 + failures))  # call 1 is observe's; then apply's
        decision, _ = await proc.store.accept(event, datetime.now(UTC))
        await runner.submit(decision)
        final = await runner.wait(event.event_id, 20)
        assert final is not None and final.verdict is not None
        assert final.verdict.verdict.action == Action.ENFORCE  # the guardrail's, whatever acting met
        [record] = [r for r in await proc.audit.records(event.event_id) if r.kind == "decision"]
        if failures == 1:
            assert final.state == DecisionState.DONE and final.error is None
            assert _syncs(sandbox, event.event_id) == [True, False]
        else:
            assert final.state == DecisionState.FAILED
            assert "apply.clock" in (final.error or "") and record.payload["failure"]["kind"] == "apply.clock"
            assert _syncs(sandbox, event.event_id) == []  # it failed before any write: nothing to record
    finally:
        await proc.stop()
