"""EventStore.transition, the one conditional write every way out of a state passes through, on both backends:
of two racing moves out of `awaiting_approval` (an approval, the expiry of the wait) exactly one is written,
with its intent row; the state a later save carries never undoes an expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agents.drift.acting.store import INTENT_STEP, ActingStore
from agents.drift.database import Database
from agents.drift.open_rule import Ruling, changes_digest, rule
from agents.drift.store import EventStore
from protocol.models import Approval, DecisionState
from tests.console.decisions import decision

NOW = datetime(2026, 11, 21, 16, 30, tzinfo=UTC)


async def test_of_an_approval_and_an_expiry_racing_exactly_one_is_written(db: Database) -> None:
    store, acting = EventStore(db), ActingStore(db)
    for n in range(1, 9):  # concurrent for real: both statements in flight on the backend at once
        waiting = decision(n)
        await store.accept(waiting.event, NOW, join=False)
        await store.save(waiting)
        approved = waiting.model_copy(update={"state": DecisionState.APPLYING, "updated_at": NOW,
                                              "approval": Approval(decision="approve", approver="ana")})
        expired = waiting.model_copy(update={"state": DecisionState.EXPIRED, "expired_at": NOW, "updated_at": NOW})
        moves = (approved, expired) if n % 2 else (expired, approved)
        results = await asyncio.gather(*(store.transition(m, DecisionState.AWAITING_APPROVAL) for m in moves))
        [won] = [r for r in results if r is not None]
        stored = await store.get(waiting.event.event_id)
        assert stored is not None and stored.state == won.state
        intent = await acting.outbox_row(waiting.event.event_id, INTENT_STEP)
        assert intent is not None and intent == (
            "done" if won.state == DecisionState.EXPIRED else "requested", {
                "action": "enforce", "decision_state": won.state.value})


async def test_an_expired_decision_stays_expired_and_its_drift_is_decided_anew(db: Database) -> None:
    store = EventStore(db)
    waiting = decision(1)
    await store.accept(waiting.event, NOW, join=False)
    await store.save(waiting)
    expired = waiting.model_copy(update={"state": DecisionState.EXPIRED, "expired_at": NOW})
    assert await store.transition(expired, DecisionState.AWAITING_APPROVAL) == expired
    assert await store.transition(expired, DecisionState.AWAITING_APPROVAL) is None  # it already moved
    await store.save(waiting.model_copy(update={"state": DecisionState.DONE}))  # a late writer: expiry is sticky
    stored = await store.get(waiting.event.event_id)
    assert stored is not None and stored.state == DecisionState.EXPIRED and stored.final
    assert await store.count_state(DecisionState.EXPIRED.value) == 1
    # closed, and it decided nothing: the same drift again is a new decision, neither joined nor superseding
    assert stored.report is not None
    assert rule(stored.report.revision, changes_digest(stored.report), stored).ruling == Ruling.DECIDE
    assert rule(stored.report.revision, changes_digest(stored.report), waiting).ruling == Ruling.JOIN
    again, joined = await store.accept(decision(2).event, NOW)  # intake joins open decisions only
    assert not joined and again.event.event_id != waiting.event.event_id
