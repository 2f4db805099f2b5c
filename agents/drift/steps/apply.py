"""Step 9, apply: carry out the verdict (or the approver's choice) through the Argo CD API, per mode."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from agents.drift.acting.errors import ApplyError
from agents.drift.steps.common import verdict_of
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import ApplyFailure, DriftState, Mode, Update
from protocol.models import AppliedAction

log = logging.getLogger(__name__)


class Applied(Update):
    applied: list[AppliedAction]
    """Added to what the thread already did (the field merges)."""
    backport_patch: str | None = None
    apply_error: ApplyFailure | None = None
    acted: bool = True


def _nothing(mode: Mode, now: datetime, **detail: JsonValue) -> list[AppliedAction]:
    return [AppliedAction(kind="none", mode=mode, executed=False, at=now, detail=detail)]


class Apply:
    name = "apply"

    def __init__(self, deps: GraphDeps) -> None:
        self._applier = deps.applier
        self._clock = deps.clock

    async def __call__(self, state: DriftState) -> Applied:
        verdict = verdict_of(state).verdict
        if self._applier is None:
            return Applied(applied=[])
        now = await self._clock.now()
        mode: Mode = state.mode or "shadow"  # a verdict without a mode acts on nothing
        approval = state.approval
        if approval is not None and approval.decision == "reject":
            return Applied(applied=_nothing(mode, now, reason="rejected", rejected_by=approval.approver,
                                            comment=approval.comment))
        if state.report is None:
            return Applied(applied=_nothing(mode, now, reason="no drift report: nothing can be applied"))
        action = (approval.action if approval else None) or verdict.action
        try:
            done, backport = await self._applier.apply(
                mode=mode, action=action, report=state.report, verdict=verdict, now=now,
                approved_by=approval.approver if approval else None)
        except ApplyError as exc:
            log.warning("applying %s for %s failed: %s", action.value, state.event.event_id, exc)
            detail: dict[str, Any] = {"reason": "apply failed", "action": action.value, "error": str(exc),
                                      "kind": exc.kind}
            # the writes made before the failure (a dry run, say) happened: the record keeps every one
            return Applied(applied=[*exc.done, *_nothing(mode, now, **detail)],
                           apply_error=ApplyFailure(kind=exc.kind, message=str(exc)))
        return Applied(applied=done, backport_patch=backport)
