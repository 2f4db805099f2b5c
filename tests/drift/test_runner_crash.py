"""A kill -9 that loses the newest graph checkpoint: the decision resumes to its end, never final without `apply`.

With durability="async" a step's checkpoint is written while the next step runs. A crash can keep the
guardrail's writes (attached to the checkpoint before it) and lose the checkpoint after it: the thread's
live snapshot then shows no `next` task although `apply` never completed. The runner must run the thread
on (the outbox keeps the sync to one) and only then record the decision, with its `apply` record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import SecretStr

from agents.drift.audit import AuditLog
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.graph import GraphDeps, compile_graph
from agents.drift.metrics import DriftMetrics
from agents.drift.runner import _DURABILITY, DecisionRunner
from agents.drift.store import EventStore
from protocol.models import Action, AppliedAction, DecisionState, DriftReport, Verdict
from protocol.signing import Signer, TrustStore, Verifier, generate_key
from tests.drift.test_runner import FakeGuardrail, FakeObserver, FakeReasoner, FixedClock, _event

AFTER_GUARDRAIL = 6  # the checkpoint steps: input -1, __start__ 0, observe 1, ..., sign 5, guardrail 6, apply 7


class Killed(Exception):
    """Stands for the process dying inside a node."""


class LosingSaver(InMemorySaver):
    """Drops checkpoints from a step on: what a kill -9 does to checkpoints still being written."""

    lose_from: int | None = None

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if self.lose_from is not None and metadata.get("step", -1) >= self.lose_from:
            return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}
        return await super().aput(config, checkpoint, metadata, new_versions)


class OutboxApplier:
    """Syncs at most once per event (the outbox), like agents.drift.acting.applier.Applier."""

    def __init__(self) -> None:
        self.synced: list[str] = []
        self.die: str | None = None
        """"before" or "after": the process dies before sending the sync, or after it was carried out."""

    async def apply(self, *, mode: str, action: Action, report: DriftReport, verdict: Verdict, now: datetime,
                    approved_by: str | None = None) -> tuple[list[AppliedAction], str | None]:
        if self.die == "before":
            raise Killed
        if report.event_id in self.synced:
            return [AppliedAction(kind="sync", mode=mode, executed=False, at=now,
                                  detail={"skipped": "already synced for this event"})], None
        self.synced.append(report.event_id)
        if self.die == "after":
            raise Killed
        return [AppliedAction(kind="sync", mode=mode, executed=True, at=now)], None

    async def request_approval(self, report: DriftReport, verdict: Verdict, mode: str, now: datetime
                               ) -> list[AppliedAction]:
        return []


@pytest.fixture
async def parts(tmp_path: Path):
    key = generate_key("drift")
    trust = TrustStore()
    trust.add("drift", key)
    config = DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                         argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr("a"),
                         decision_deadline_s=5, mode="autonomous")
    store = EventStore(config.db_path)
    await store.open()
    audit = AuditLog(config.db_path)
    await audit.open()
    signer = Signer("drift", key)
    async with httpx.AsyncClient() as http:
        clock = FixedClock(http, None)
        applier = OutboxApplier()
        deps = GraphDeps(
            config=config, clock=clock, observer=FakeObserver(),  # type: ignore[arg-type]
            tools=None, plan=lambda r, n: [], peers=None,  # type: ignore[arg-type]
            wants=lambda k, p, r: False, reasoner=FakeReasoner(), signer=signer,
            verifier=Verifier(trust, "drift", replay=None), guardrail=FakeGuardrail(),
            applier=applier,  # type: ignore[arg-type]
        )
        saver = LosingSaver()
        graph = compile_graph(deps, saver)
        yield config, store, audit, signer, clock, applier, saver, graph
    await audit.close()
    await store.close()


@pytest.mark.parametrize("applied_before_crash", [True, False], ids=["synced-then-killed", "killed-before-apply"])
async def test_a_lost_checkpoint_after_the_guardrail_resumes_to_apply(parts, applied_before_crash: bool) -> None:
    config, store, audit, signer, clock, applier, saver, graph = parts
    event = _event()
    decision, _ = await store.accept(event, datetime.now(UTC))
    await store.save(decision.model_copy(update={"state": DecisionState.DECIDING}))
    thread = {"configurable": {"thread_id": event.event_id}}

    # the first process: the guardrail's writes are saved, the checkpoint after it is not, then kill -9
    saver.lose_from = AFTER_GUARDRAIL
    applier.die = "after" if applied_before_crash else "before"
    with pytest.raises(Killed):
        await graph.ainvoke({"event": event.model_dump(mode="json")}, thread, durability=_DURABILITY)
    snapshot = await graph.aget_state(thread)
    assert snapshot.values.get("verdict") and "applied" not in snapshot.values
    # the state a lost checkpoint leaves behind: no `next`, yet the thread stands before `apply`
    assert snapshot.next == () and [t.name for t in snapshot.tasks] == ["guardrail"]
    assert applier.synced == ([event.event_id] if applied_before_crash else [])

    # the next process resumes the undecided event
    saver.lose_from = None
    applier.die = None
    runner = DecisionRunner(config, graph, store, audit, signer, clock, DriftMetrics())
    assert await runner.resume_undecided() == 1
    final = await runner.wait(event.event_id, 10)
    assert final is not None and final.state == DecisionState.DONE, final
    assert final.verdict is not None and final.verdict.verdict.action == Action.ENFORCE
    assert applier.synced == [event.event_id]  # carried out exactly once across the crash
    kinds = [r.kind for r in await audit.records(event.event_id)]
    assert kinds == ["decision", "apply"], (kinds, final.timings_ms)
    assert "apply" in final.timings_ms and final.applied
    assert (await audit.verify()).ok


async def test_a_finished_thread_is_recorded_without_running_a_step_again(parts) -> None:
    config, store, audit, signer, clock, applier, _, graph = parts
    event = _event()
    decision, _ = await store.accept(event, datetime.now(UTC))
    await store.save(decision.model_copy(update={"state": DecisionState.DECIDING}))
    # the graph ended, then the process died before recording the decision
    await graph.ainvoke({"event": event.model_dump(mode="json")}, {"configurable": {"thread_id": event.event_id}},
                        durability=_DURABILITY)
    runner = DecisionRunner(config, graph, store, audit, signer, clock, DriftMetrics())
    assert await runner.resume_undecided() == 1
    final = await runner.wait(event.event_id, 10)
    assert final is not None and final.state == DecisionState.DONE
    assert applier.synced == [event.event_id]
    assert [a.executed for a in final.applied] == [True]  # the first run's result, not a skipped re-run
    assert [r.kind for r in await audit.records(event.event_id)] == ["decision", "apply"]
