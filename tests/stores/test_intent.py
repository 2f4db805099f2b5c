"""The intent and the decision state are one transaction: after an error injected at the SQL level between
them, either both exist or neither does (read back through the stores' own API), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.drift.acting.store import INTENT_STEP, ActingStore
from agents.drift.database import Database
from agents.drift.store import EventStore
from protocol.models import Action, Decision, DecisionState, SignedVerdict, Verdict
from tests.stores.conftest import fail_on
from tests.support.drift_core import event

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def _with_verdict(decision: Decision) -> Decision:
    verdict = Verdict(event_id=decision.event.event_id, action=Action.ENFORCE, requires_approval=False,
                      allowed_actions=[Action.ENFORCE], confidence=0.95, threshold=0.8, decided_at=NOW)
    return decision.model_copy(update={"state": DecisionState.APPLYING,
                                       "verdict": SignedVerdict(jws="x.y.z", verdict=verdict), "updated_at": NOW})


async def test_the_verdict_and_its_intent_are_written_together(db: Database) -> None:
    store, acting = EventStore(db), ActingStore(db)
    received, _ = await store.accept(event(), NOW)
    assert await acting.outbox_row(received.event.event_id, INTENT_STEP) is None
    applying = _with_verdict(received)
    await store.save(applying)
    assert await acting.outbox_row(applying.event.event_id, INTENT_STEP) == (
        "requested", {"action": "enforce", "decision_state": "applying"})
    await store.save(applying.model_copy(update={"state": DecisionState.DONE}))
    row = await acting.outbox_row(applying.event.event_id, INTENT_STEP)
    assert row is not None and row[0] == "done"
    # the intent row is not an Argo CD write: recovery does not treat it as one
    assert await acting.outbox_requested() == []


@pytest.mark.parametrize(("table", "op"), [("outbox", "INSERT"), ("drift_decisions", "UPDATE")])
async def test_an_error_between_the_two_writes_leaves_neither(db: Database, table: str, op: str) -> None:
    store, acting = EventStore(db), ActingStore(db)
    received, _ = await store.accept(event(), NOW)
    await fail_on(db, table, op)
    with pytest.raises(Exception, match="injected"):
        await store.save(_with_verdict(received))
    kept = await store.get(received.event.event_id)
    assert kept is not None and kept.state == DecisionState.RECEIVED and kept.verdict is None
    assert await acting.outbox_row(received.event.event_id, INTENT_STEP) is None


async def test_a_failed_end_leaves_the_intent_requested(db: Database) -> None:
    store, acting = EventStore(db), ActingStore(db)
    received, _ = await store.accept(event(), NOW)
    applying = _with_verdict(received)
    await store.save(applying)
    await fail_on(db, "outbox", "UPDATE")
    with pytest.raises(Exception, match="injected"):
        await store.save(applying.model_copy(update={"state": DecisionState.DONE}))
    kept = await store.get(received.event.event_id)
    assert kept is not None and kept.state == DecisionState.APPLYING
    row = await acting.outbox_row(received.event.event_id, INTENT_STEP)
    assert row is not None and row[0] == "requested"


async def test_a_superseded_decision_ends_its_intent(db: Database) -> None:
    store, acting = EventStore(db), ActingStore(db)
    received, _ = await store.accept(event(), NOW)
    waiting = _with_verdict(received).model_copy(update={"state": DecisionState.AWAITING_APPROVAL})
    await store.save(waiting)
    assert await store.supersede(waiting, "later-event", NOW) is not None
    row = await acting.outbox_row(received.event.event_id, INTENT_STEP)
    assert row is not None and row[0] == "done"
