"""The fault suite: the real processes under the supervisor, faults only from outside the drift agent.

Each case decides applications of its own (clones of one enforce scenario, autonomous mode: a
dry run, a sync and the status annotation each), injects one fault — kill -9 of the drift agent
at a step found by holding the backend route that step calls, a sync held past the deadline, a
5xx from Argo CD, a frozen specialist or MCP server, a burst — and then checks DESIGN's
invariants with tests.support.invariants against the sandbox's write record, the decisions API
and `driftwise audit verify`. Each prints its line: accepted, lost, terminal twice, mismatches.

Cases that fail because of the product bugs issue 13 describes are strict xfails naming the item;
they flip to failures (to be un-marked) when the fix lands.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from protocol.models import DecisionState
from tests.support.fault_system import SYNC_ROUTE, Clone, FaultSystem, fault_system
from tests.support.invariants import check_invariants, settled

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# Long enough that a decision of the 200-burst on a loaded 2-core machine does not meet it (at 8 s, 20 of
# 200 did, and each broke the record the way issue 13 item 3 says); the deadline case waits it out once.
DEADLINE_S = 20.0
# The product bugs the strict xfails below wait on (found by these cases, named by issue 13's items).
DRY_RUN_SENT_TWICE = ("issue 13 item 2: the dry run sent before the crash is sent again on resume, "
                      "and the decision records one of the two")
DEADLINE_REWRITES_VERDICT = ("issue 13 item 3: the deadline fires while the sync is in flight; the decision ends "
                             "without that sync in its record (it was escalate, now failed), and Argo CD then runs it")
FAILED_APPLY_DROPS_DRY_RUN = ("issue 13 item 2: an apply failing at the sync drops the dry run it already made "
                              "from the decision's record (applied is replaced by one `none`)")
ESCALATED_UNDER_LOAD = ("issue 13 items 4 and 1: under the burst a decision escalates for load (`database is locked`, "
                        "a specialist late), and its approval annotation has no `apply` in the audit")
APPROVAL_ANNOTATION_UNAUDITED = ("issue 13 item 1: the status annotation written for an approval request "
                                 "(awaiting_approval) is recorded by the decision, but the audit has no `apply` for it")


def known_bug(reason: str) -> pytest.MarkDecorator:
    """A case failing today on a product bug issue 13 names: it must fail (strict), and on an invariant."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


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


@known_bug(DRY_RUN_SENT_TWICE)
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


@known_bug(DEADLINE_REWRITES_VERDICT)
async def test_deadline_fires_while_the_sync_is_held(system: FaultSystem) -> None:
    (clone,) = system.take(1)
    held = await system.fault(method="POST", path=_sync_of(clone), action="hold", skip=1, times=1)
    event_id = await system.post(clone)
    await system.until_held(held)
    # past the deadline: the drift agent answers the long poll once the decision is final, or at its end
    await system.decision(event_id, wait_s=DEADLINE_S + 4)
    outcome = await check_invariants(system, "deadline while the sync is held", {event_id: clone.app})
    assert outcome.holds, outcome.report()


@known_bug(FAILED_APPLY_DROPS_DRY_RUN)
async def test_argocd_fails_the_sync(system: FaultSystem) -> None:
    (clone,) = system.take(1)
    await system.fault(method="POST", path=_sync_of(clone), action="fail", status=503, skip=1)
    event_id = await system.post(clone)
    decided = await system.decision(event_id, wait_s=DEADLINE_S + 10)
    assert decided is not None and decided.error and "503" in decided.error, decided
    outcome = await check_invariants(system, "Argo CD answers the sync 503", {event_id: clone.app})
    assert outcome.holds, outcome.report()


@pytest.mark.parametrize("frozen", [
    pytest.param("security", marks=known_bug(APPROVAL_ANNOTATION_UNAUDITED)),
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
    assert not (outcome.lost or outcome.terminal_twice or outcome.mismatches) and outcome.audit_verified, \
        outcome.report()
    # Known, load-caused (seen in 4 of 10 local runs on a shared 2-core machine, 1-3 decisions each): a decision
    # escalates under load (`database is locked`, issue 13 item 4; a specialist not answering in time) and its
    # approval annotation has no `apply` in the audit (item 1). Not a strict xfail, which would flip on the
    # runs without it: an xfail only when it happens and only for those events; asserted on every other run.
    decisions = await system.decisions()
    waiting = {e for e in accepted if decisions[e].state == DecisionState.AWAITING_APPROVAL}
    others = [m for m in outcome.audit_mismatches if m.split(" ", 1)[0] not in waiting]
    assert not others, outcome.report()
    locked = [e for e in accepted if "database is locked" in (decisions[e].error or "")]
    if outcome.audit_mismatches or locked:  # item 4: `database is locked` must not happen at all
        pytest.xfail(f"{ESCALATED_UNDER_LOAD} ({len(waiting)} of 200 escalated, {len(locked)} on `database is "
                     f"locked`: {sorted(waiting)[:3]})")
