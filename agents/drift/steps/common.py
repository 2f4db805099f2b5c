"""What several steps need of the state: the report every step after observe stands on."""

from __future__ import annotations

from agents.drift.steps.state import DriftState
from protocol.models import DriftReport, SignedVerdict


class StepOrderError(RuntimeError):
    """A step ran before the step that gives it its input: a bug of the graph, never of the input."""


def report_of(state: DriftState) -> DriftReport:
    if state.report is None:
        raise StepOrderError(f"event {state.event.event_id}: no drift report yet (observe has not run)")
    return state.report


def verdict_of(state: DriftState) -> SignedVerdict:
    if state.verdict is None:
        raise StepOrderError(f"event {state.event.event_id}: no verdict yet (the guardrail has not run)")
    return state.verdict
