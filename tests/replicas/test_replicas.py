"""Three drift-agent replicas on one PostgreSQL, one killed with kill -9 mid-burst and left down (issue 17).

The whole system as real processes under the product's supervisor (tests.support.fault_system): the
sandbox, four MCP servers, both specialists and three drift agents sharing one state (state.dsn), in
autonomous mode. The sandbox clones an enforce, a defer and an escalate scenario into distinct
applications; their notifications are posted round-robin over the replicas; once a third of them were
answered 202, one replica is SIGKILLed and not restarted (a notification it refused is sent to the next
replica, as Argo CD's retrying sender would reach another pod behind the Service). Then every decision
waiting for a human is approved on a replica other than the one that decided it (its `decision` audit
record names the replica), and the sandbox's clock is moved past every deferred sync's window.

Across the replicas, from outside only (tests.support.invariants' single-replica checks, reused):
0 lost, 0 terminal twice, every Argo CD write recorded exactly once by its decision and its audit,
each deferred sync run once, `driftwise audit verify` clean; and the survivors took over the killed
replica's leases.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from driftwise.supervisor import replica_name
from protocol.models import Action, Decision, DecisionState
from tests.support.fault_system import API, Clone, FaultSystem, fault_system
from tests.support.invariants import check_invariants, settle, write_kind
from tests.support.postgres import PgCluster, fresh_dsn
from tests.support.waiting import poll_until

pytestmark = pytest.mark.slow

REPLICAS = 3
PER_SCENARIO = int(os.environ.get("DRIFTWISE_REPLICA_TEST_PER_SCENARIO", "50"))
"""Applications per scenario. The issue's burst is 600 (DRIFTWISE_REPLICA_TEST_PER_SCENARIO=200); on 2 cores that
takes about 230 s (the system's throughput, ~5 decisions/s with everything on one machine, not the replicas, is
the bound), so CI runs 3 x 50 = 150, which fits its 120 s."""
DEFER_SCENARIO = "v02-configmap-environment-tuning"
ESCALATE_SCENARIO = "v08-secret-value-changed"
VICTIM = 1
CONCURRENCY = 24
LEASE_TTL_S = 6.0
SETTLE_S = 90


async def _post_somewhere(system: FaultSystem, clone: Clone, first: int, down: set[int], timeout_s: float = 60) -> str:
    """POST to replica `first`, else the next one up: a replica killed mid-request refuses or drops it."""
    deadline = time.monotonic() + timeout_s
    replica = first
    while True:
        if replica not in down:
            try:
                return await system.post(clone, replica)
            except (httpx.TransportError, AssertionError):
                if time.monotonic() > deadline:
                    raise
        replica = (replica + 1) % system.replicas


def _deciding_replica(records: list, event_id: str) -> str | None:
    for r in records:
        if r.event_id == event_id and r.kind == "decision":
            return r.payload.get("replica")
    return None


async def _approve_elsewhere(system: FaultSystem, waiting: list[Decision], live: list[int]) -> Counter[str]:
    """Approve each waiting decision on a live replica other than the one that decided it."""
    records, _, _ = await system.audit()
    answered: Counter[str] = Counter()
    ids = {replica_name(i): i for i in range(system.replicas)}

    async def one(n: int, decision: Decision) -> None:
        event_id = decision.event.event_id
        decided_by = _deciding_replica(records, event_id)
        assert decided_by in ids, f"{event_id}: its decision record names replica {decided_by!r}, not one of {ids}"
        others = [i for i in live if i != ids[decided_by]]
        target = others[n % len(others)]
        assert decision.verdict is not None
        allowed = decision.verdict.verdict.allowed_actions
        action = Action.ENFORCE if Action.ENFORCE in allowed else allowed[0]
        r = await system.http.post(f"{system.drift_url(target)}/v1/decisions/{event_id}/approve", headers=API,
                                   json={"approver": "sre@example.com", "action": action.value}, timeout=60)
        assert r.status_code == 200, r.text
        answered[f"{decided_by}->{replica_name(target)}"] += 1

    await asyncio.gather(*(one(n, d) for n, d in enumerate(waiting)))
    return answered


def _sync_at(decision: Decision) -> datetime | None:
    for a in decision.applied:
        if a.kind == "schedule" and "sync_at" in a.detail:
            return datetime.fromisoformat(str(a.detail["sync_at"]).replace("Z", "+00:00"))
    return None


async def test_three_replicas_on_one_postgresql_lose_nothing_when_one_is_killed(pg_cluster: PgCluster,
                                                                                tmp_path: Path) -> None:
    dsn = await fresh_dsn(pg_cluster)
    started = time.monotonic()
    async with fault_system(tmp_path, pool=PER_SCENARIO, dsn=dsn, replicas=REPLICAS,
                            also=(DEFER_SCENARIO, ESCALATE_SCENARIO), drift={"lease_ttl_s": LEASE_TTL_S}) as system:
        up_s = time.monotonic() - started
        clones = system.take(len(system.pool))
        assert len(clones) >= 3 * PER_SCENARIO
        clones = clones[:3 * PER_SCENARIO]
        gate = asyncio.Semaphore(CONCURRENCY)
        accepted: dict[str, str] = {}
        down: set[int] = set()
        kill_at = len(clones) // 3

        async def one(i: int, clone: Clone) -> None:
            async with gate:
                event_id = await _post_somewhere(system, clone, i % REPLICAS, down)
            accepted[event_id] = clone.app
            if len(accepted) == kill_at and not down:
                down.add(VICTIM)
                system.supervisor.kill(replica_name(VICTIM))

        burst_started = time.monotonic()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(clones)))
        burst_s = time.monotonic() - burst_started
        assert down == {VICTIM} and len(accepted) == len(clones)
        live = [i for i in range(REPLICAS) if i not in down]
        print(f"system up in {up_s:.1f}s; {len(accepted)} notifications accepted in {burst_s:.1f}s "
              f"({len(accepted) / burst_s:.1f}/s), replica {replica_name(VICTIM)} killed after {kill_at}")

        await settle(system, list(accepted), SETTLE_S)
        settled_s = time.monotonic() - burst_started
        decisions = await system.decisions(live[0], list(accepted))
        waiting = [d for e, d in decisions.items() if e in accepted and d.state == DecisionState.AWAITING_APPROVAL]
        deferred = {e: at for e, d in decisions.items() if e in accepted and (at := _sync_at(d)) is not None}
        states = Counter(d.state.value for d in decisions.values())
        assert waiting and deferred, f"the burst should leave approvals and deferred syncs: {states}"
        print(f"settled {settled_s:.1f}s after the burst began: {dict(states)}")
        answered = await _approve_elsewhere(system, waiting, live)
        approved_s = time.monotonic() - burst_started
        assert all(pair.split("->")[0] != pair.split("->")[1] for pair in answered)

        # past every deferred sync's window on Driftwise's clock: each runs once, on whichever replica claims it
        now = datetime.fromisoformat((await system.http.get(f"{system.sandbox}/sandbox/clock")).json()["now"]
                                     .replace("Z", "+00:00"))
        advance = max((at - now).total_seconds() for at in deferred.values()) + 60
        r = await system.http.post(f"{system.sandbox}/sandbox/clock", json={"advance_s": max(advance, 60)})
        assert r.status_code == 200, r.text

        async def synced() -> Counter[str]:
            return Counter(w.application for w in await system.writes() if w.accepted and write_kind(w) == "sync")

        deferred_apps = {accepted[e] for e in deferred}
        await poll_until(synced, lambda c: all(c[a] >= 1 for a in deferred_apps), SETTLE_S,
                         f"the {len(deferred_apps)} deferred syncs to run", system.tail)
        await poll_until(lambda: system.decisions(live[-1], list(deferred)), lambda ds: all(
            any(a.kind == "sync" for a in ds[e].applied) for e in deferred), SETTLE_S,
            "every deferred sync recorded by its decision", system.tail)

        outcome = await check_invariants(system, f"{REPLICAS} replicas on PostgreSQL, {replica_name(VICTIM)} killed",
                                         accepted, settle_s=SETTLE_S)
        syncs = await synced()
        twice = [a for a in deferred_apps if syncs[a] != 1]
        metrics = (await system.http.get(f"{system.drift_url(live[0])}/metrics")).text
        total_s = time.monotonic() - started
        print(f"approvals answered (decided by -> answered on): {dict(answered)} by {approved_s:.1f}s; deferred "
              f"syncs: {len(deferred_apps)}, not run exactly once: {len(twice)}; total {total_s:.1f}s")
        assert outcome.holds, outcome.report()
        assert not twice, f"deferred syncs not run exactly once: {twice[:5]}"
        assert outcome.accepted == len(clones)
        assert "\ndriftwise_leases_held " in metrics
