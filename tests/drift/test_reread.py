"""Drift that stays: a governed application still OutOfSync is re-decided only when its drift changed."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.drift.open_rule import changes_digest
from agents.drift.reread import REREAD_EVENT, Rereader
from agents.drift.store import EventStore
from protocol.models import (
    Decision,
)
from tests.support.reread_fakes import NOW, FakeArgo, drift_report


def test_digest_ignores_when_and_names_what() -> None:
    a = drift_report("e1", 8)
    b = drift_report("e2", 8).model_copy(update={"observed_at": datetime(2027, 1, 1, tzinfo=UTC)})
    assert changes_digest(a) == changes_digest(b)
    assert changes_digest(a) != changes_digest(drift_report("e3", 9))


async def test_same_drift_is_left_alone_and_a_changed_one_is_a_new_event(store: EventStore) -> None:
    submitted: list[Decision] = []

    async def submit(decision: Decision) -> None:
        submitted.append(decision)

    assert await Rereader(store, FakeArgo(8), submit).tick(NOW) == []  # type: ignore[arg-type]
    assert await Rereader(store, FakeArgo(9, sync="Synced"), submit).tick(NOW) == []  # type: ignore[arg-type]
    new = await Rereader(store, FakeArgo(9), submit).tick(NOW)  # type: ignore[arg-type]
    assert len(new) == 1 and [d.event.event_id for d in submitted] == new
    assert submitted[0].event.notification.event == REREAD_EVENT
    # the new event is being decided: the next tick leaves the application alone until it is not
    assert await Rereader(store, FakeArgo(10), submit).tick(NOW) == []  # type: ignore[arg-type]


async def test_a_changed_revision_is_a_new_event_too(store: EventStore) -> None:
    submitted: list[Decision] = []

    async def submit(decision: Decision) -> None:
        submitted.append(decision)

    argo = FakeArgo(8)
    assert await Rereader(store, argo, submit).tick(NOW) == []  # type: ignore[arg-type]
    argo.revision = "def"
    [new] = await Rereader(store, argo, submit).tick(NOW)  # type: ignore[arg-type]
    assert submitted[0].event.notification.revision == "def" and submitted[0].event.event_id == new
