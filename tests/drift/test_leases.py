"""Leases in process: runners sharing one state as replicas do, each with its own LeaseKeeper (agents.drift.leases).

The SQL of leases runs against both backends in tests/stores; the replica processes in tests/replicas. Here the
runner's use of them: a decision another live replica leases is left to it and taken over once that lease ran
out; an approval answered on another replica resumes the thread there; the long poll of a replica that does not
run the decision answers from the shared store; a lease lost stops the work.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agents.drift.leases import LeaseKeeper, LeaseStore
from protocol.models import Approval, DecisionState
from tests.support.drift_core import FakeObserver, event

TTL_S = 30.0


async def _keepers(config, *owners: str) -> tuple[LeaseStore, list[LeaseKeeper]]:
    leases = LeaseStore(config.db_path)
    await leases.open()
    return leases, [LeaseKeeper(leases, owner, TTL_S) for owner in owners]


async def test_a_decision_leased_by_a_live_replica_is_left_to_it_then_taken_over_once(harness) -> None:
    make, store, audit, _, _, config = harness
    leases, (a, b) = await _keepers(config, "a", "b")
    try:
        ev = event("taken-over")
        decision, _ = await store.accept(ev, datetime.now(UTC))
        assert await a.take(ev.event_id)  # replica a took it, then died before deciding
        runner_b = make(leases=b)
        assert await runner_b.take_over() == 0  # a's lease is live: nothing for b to take
        await runner_b.submit(decision)  # nor to run when asked directly
        assert (await runner_b.wait(ev.event_id, 0.5)).state == DecisionState.RECEIVED
        # a's lease runs out on the database's clock (a renews nothing: it is dead)
        assert await leases.acquire(ev.event_id, "a", -1)
        assert await runner_b.take_over() == 1
        final = await runner_b.wait(ev.event_id, 10)
        assert final is not None and final.state == DecisionState.DONE
        assert [r.kind for r in await audit.records(ev.event_id)] == ["decision"]
        assert (await audit.records(ev.event_id))[0].payload["replica"] == config.replica_id
        assert await leases.held("b") == 0 and b.count == 0  # released once final
    finally:
        await leases.close()


async def test_an_approval_on_another_replica_resumes_the_thread_there(harness) -> None:
    make, store, audit, _, _, config = harness
    leases, (a, b) = await _keepers(config, "a", "b")
    try:
        ev = event("waits-for-a-human")
        decision, _ = await store.accept(ev, datetime.now(UTC))
        runner_a, runner_b = make(observer=FakeObserver(fail=True), leases=a), make(leases=b)
        await runner_a.submit(decision)
        waiting = await runner_a.wait(ev.event_id, 10)
        assert waiting is not None and waiting.state == DecisionState.AWAITING_APPROVAL
        assert await leases.held("a") == 0  # nothing runs while a human decides: no lease held
        # b's long poll of a decision it never ran answers from the shared store, at once when it is final
        assert (await runner_b.wait(ev.event_id, 5)).state == DecisionState.AWAITING_APPROVAL
        approved = await runner_b.resume(ev.event_id, Approval(decision="approve", approver="sre@example.com"), 10)
        assert approved.state == DecisionState.DONE and approved.approval is not None
        kinds = [r.kind for r in await audit.records(ev.event_id)]
        assert kinds.count("approval") == 1 and kinds.count("decision") == 1
        assert await leases.held("b") == 0 and b.count == 0
    finally:
        await leases.close()


async def test_a_lease_lost_is_reported_to_its_watcher_and_no_longer_held(harness) -> None:
    config = harness[-1]
    counts: list[int] = []
    leases = LeaseStore(config.db_path)
    await leases.open()
    try:
        mine = LeaseKeeper(leases, "a", TTL_S, on_count=counts.append)
        kept, lost = event("kept"), event("lost")
        stopped: list[str] = []
        for ev in (kept, lost):
            assert await mine.take(ev.event_id)
            mine.watch(ev.event_id, lambda e=ev.event_id: stopped.append(e))
        assert await mine.take(kept.event_id) and mine.count == 2  # counted: admission and runner both hold it
        # `lost` runs out (a renewal came too late) and replica b takes it over
        assert await leases.acquire(lost.event_id, "a", -1) and await leases.acquire(lost.event_id, "b", TTL_S)
        assert await mine.renew() == [lost.event_id]
        assert stopped == [lost.event_id] and not mine.holds(lost.event_id) and mine.holds(kept.event_id)
        await mine.release(kept.event_id)
        assert mine.holds(kept.event_id)  # one of its two holders let go
        await mine.release(kept.event_id)
        assert not mine.holds(kept.event_id) and await leases.held("a") == 0
        assert counts[-1] == 0 and max(counts) == 2
    finally:
        await leases.close()
