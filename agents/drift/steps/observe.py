"""Step 2, observe: Argo CD's view of the drift, as a DriftReport stamped with Driftwise's clock."""

from __future__ import annotations

from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Update
from protocol.models import DriftReport


class Observed(Update):
    report: DriftReport


class Observe:
    name = "observe"

    def __init__(self, deps: GraphDeps) -> None:
        self._observer = deps.observer
        self._clock = deps.clock

    async def __call__(self, state: DriftState) -> Observed:
        return Observed(report=await self._observer.observe(state.event, self._clock.now))
