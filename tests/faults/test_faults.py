"""The fault suite: the real processes under the supervisor, faults only from outside the drift agent.

Each case decides applications of its own (clones of one enforce scenario, autonomous mode: a
dry run, a sync and the status annotation each), injects one fault — kill -9 of the drift agent
at a step found by holding the backend route that step calls, a sync held past the deadline, a
5xx from Argo CD, a frozen specialist or MCP server, a burst — and then checks DESIGN's
invariants with tests.support.invariants against the sandbox's write record, the decisions API
and `driftwise audit verify`. Each prints its line: accepted, lost, terminal twice, mismatches.

Every case asserts the invariants (the strict xfails of issue 13's product bugs are gone with the fixes).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.support.fault_system import SYNC_ROUTE, Clone, FaultSystem, fault_system
from tests.support.invariants import check_invariants, settled

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# Long enough that a decision of the 200-burst on a loaded 2-core machine does not meet it (at 8 s, 20 of
# 200 did, and each broke the record the way issue 13 item 3 says); the deadline case waits it out once.
DEADLINE_S = 20.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultSystem]:
    async with fault_system(tmp_path_factory.mktemp("faults"), deadline_s=DEADLINE_S) as running:
        yield running


def _sync_of(clone: Clone) -> str:
    return SYNC_ROUTE.replace("{name}", clone.app)


async def _kill_while_held(system: FaultSystem, case: str, route: Callable[[Clone], dict[str, Any]]) -> None:
    """Hold the route the step calls (its first request only), kill -9 once it is held, release it (the
    backend carries the request out for a client that is gone), check after the supervisor's restart."""
    (clone,) = system.take(1)
    held = await system.fault(times=1, action="hold", **route(clone))
    event_id = await system.post(clone)
    await system.until_held(held)
    await system.kill9_drift(release=held)
    outcome = await check_invariants(system, case, {event_id: clone.app})
    assert outcome.holds, outcome.report()


async def test_kill9_before_observe(system: FaultSystem) -> None:
    # observe's first read is the Application; held there, nothing of the decision exists yet
    await _kill_while_held(system, "kill -9 before observe",
                           lambda c: {"method": "GET", "path": f"/api/v1/applications/{c.app}"})


async def test_kill9_during_gather(system: FaultSystem) -> None:
    # gather reads the namespace's labels through the Kubernetes MCP server
    await _kill_while_held(system, "kill -9 during gather", lambda c: {
        "backend": "kubernetes", "method": "GET", "path": f"/api/v1/namespaces/{c.namespace}"})


async def test_kill9_right_after_the_guardrail(system: FaultSystem) -> None:
    # the verdict is given and recorded; the first write (the dry run) is on its way to Argo CD
    await _kill_while_held(system, "kill -9 right after the guardrail",
                           lambda c: {"method": "POST", "path": _sync_of(c)})


async def test_kill9_between_intent_and_argocd_answer(system: FaultSystem) -> None:
    # the dry run passes, the sync itself is held: Argo CD carries it out once released, after the kill
    await _kill_while_held(system, "kill -9 between intent and Argo CD's answer",
                           lambda c: {"method": "POST", "path": _sync_of(c), "skip": 1})


async def test_kill9_after_apply(system: FaultSystem) -> None:
    (clone,) = system.take(1)
    event_id = await system.post(clone)
    decided = await system.decision(event_id, wait_s=DEADLINE_S + 10)
    assert settled(decided), decided
    await system.kill9_drift()
    outcome = await check_invariants(system, "kill -9 after apply", {event_id: clone.app})
    assert outcome.holds, outcome.report()


async def test_deadline_fires_while_the_sync_is_held(system: FaultSystem) -> None:
    (clone,) = system.take(1)
    held = await system.fault(method="POST", path=_sync_of(clone), action="hold", skip=1, times=1)
    event_id = await system.post(clone)
    await system.until_held(held)
    # past the deadline: the drift agent answers the long poll once the decision is final, or at its end
    await system.decision(event_id, wait_s=DEADLINE_S + 4)
    outcome = await check_invariants(system, "deadline while the sync is held", {event_id: clone.app})
    assert outcome.holds, outcome.report()


async def test_argocd_fails_the_sync(system: FaultSystem) -> None:
    (clone,) = system.take(1)
    await system.fault(method="POST", path=_sync_of(clone), action="fail", status=503, skip=1)
    event_id = await system.post(clone)
    decided = await system.decision(event_id, wait_s=DEADLINE_S + 10)
    assert decided is not None and decided.error and "503" in decided.error, decided
    outcome = await check_invariants(system, "Argo CD answers the sync 503", {event_id: clone.app})
    assert outcome.holds, outcome.report()


@pytest.mark.parametrize("frozen", [
    "security",
    "mcp-kubernetes",
])
async def test_a_frozen_process_mid_call(system: FaultSystem, frozen: str) -> None:
    (clone,) = system.take(1)
    pid = system.pid(frozen)
    os.kill(pid, signal.SIGSTOP)
    try:
        event_id = await system.post(clone)
        decided = await system.decision(event_id, wait_s=DEADLINE_S + 10)
        assert settled(decided), decided
    finally:
        os.kill(pid, signal.SIGCONT)
    outcome = await check_invariants(system, f"{frozen} frozen (SIGSTOP) mid-call", {event_id: clone.app})
    assert outcome.holds, outcome.report()


async def test_a_burst_of_200_at_concurrency_32(system: FaultSystem) -> None:
    clones = system.take(200)
    gate = asyncio.Semaphore(32)

    async def one(clone: Clone) -> tuple[str, str]:
        async with gate:
            return await system.post(clone), clone.app

    accepted = dict(await asyncio.gather(*(one(c) for c in clones)))
    assert len(accepted) == 200
    outcome = await check_invariants(system, "burst of 200 at concurrency 32", accepted, settle_s=150)
    assert outcome.holds, outcome.report()
    # a load-caused escalation keeps its cause, and `database is locked` must not happen at all (issue 13 item 4)
    decisions = await system.decisions()
    locked = sorted(e for e in accepted if "database is locked" in (decisions[e].error or ""))
    assert not locked, f"{len(locked)} of 200 decisions on `database is locked`: {locked[:3]}"
