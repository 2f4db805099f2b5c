"""Step 8, approve: ask for a human (the status annotation), then wait for one, durably (LangGraph interrupt).

Two nodes, so that resuming — which runs the interrupted node again — does not write the request twice.
"""

from __future__ import annotations

import logging

from langgraph.types import interrupt

from agents.drift.acting.errors import ApplyError
from agents.drift.steps.common import verdict_of
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Update
from protocol.models import AppliedAction, Approval

log = logging.getLogger(__name__)


class ApprovalRequested(Update):
    applied: list[AppliedAction]
    """Added to what the thread already did (the field merges)."""


class RequestApproval:
    name = "request_approval"

    def __init__(self, deps: GraphDeps) -> None:
        self._applier = deps.applier
        self._clock = deps.clock

    async def __call__(self, state: DriftState) -> ApprovalRequested:
        verdict = verdict_of(state).verdict
        if self._applier is None or state.report is None or state.mode is None:
            return ApprovalRequested(applied=[])
        try:
            done = await self._applier.request_approval(state.report, verdict, state.mode, await self._clock.now())
        except ApplyError as exc:  # the request is the decision itself; its annotation is a courtesy
            log.warning("approval request of %s not annotated: %s", state.event.event_id, exc)
            done = []
        return ApprovalRequested(applied=done)


class Approved(Update):
    approval: Approval


class Approve:
    name = "approve"

    def __init__(self, deps: GraphDeps) -> None:
        del deps

    async def __call__(self, state: DriftState) -> Approved:
        # pauses the thread until the runner resumes it with Command(resume=Approval), in any process
        answer = interrupt(verdict_of(state).verdict)
        if not isinstance(answer, Approval):
            raise TypeError(f"event {state.event.event_id}: resumed with {type(answer).__name__}, not an Approval")
        return Approved(approval=answer)
