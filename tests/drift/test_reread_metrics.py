"""The re-read counter: every re-read of a governed application is counted by its outcome."""

from __future__ import annotations

from agents.drift.metrics import DriftMetrics
from agents.drift.reread import Rereader
from agents.drift.store import EventStore
from protocol.models import Decision
from tests.support.reread_fakes import NOW, FakeArgo


def _counts(metrics: DriftMetrics) -> dict[str, float]:
    return {s.labels["outcome"]: s.value for family in metrics.registry.collect() if family.name == "driftwise_rereads"
            for s in family.samples if s.name.endswith("_total")}


async def test_each_reread_is_counted_by_outcome(store: EventStore) -> None:
    metrics = DriftMetrics()
    submitted: list[Decision] = []

    async def submit(decision: Decision) -> None:
        submitted.append(decision)

    assert await Rereader(store, FakeArgo(8), submit, metrics).tick(NOW) == []  # type: ignore[arg-type]
    assert await Rereader(store, FakeArgo(8), submit, metrics).tick(NOW) == []  # type: ignore[arg-type]
    assert await Rereader(store, FakeArgo(9, sync="Synced"), submit, metrics).tick(NOW) == []  # type: ignore[arg-type]
    assert _counts(metrics) == {"unchanged": 2, "synced": 1}
    assert len(await Rereader(store, FakeArgo(9), submit, metrics).tick(NOW)) == 1  # type: ignore[arg-type]
    assert _counts(metrics) == {"unchanged": 2, "synced": 1, "changed": 1}
    assert b'driftwise_rereads_total{outcome="changed"} 1.0' in metrics.render()
