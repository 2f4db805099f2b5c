"""Run the evidence plan and the rules reasoner over a scenario dict (typed inputs, no processes)."""

from __future__ import annotations

import json
from typing import Any

from agents.drift.evidence_plan import plan_evidence
from agents.drift.reasoning.base import ReasoningInput
from protocol.models import Action, Recommendation
from tests.reasoning.specialists import answers
from tests.reasoning.world import gather, now_of, report_for

EVENT = "evt-test"
THRESHOLD = 0.80


def reasoning_input(s: dict[str, Any], *, specialists: list[Recommendation] | None = None,
                    unreachable: list[str] | None = None) -> ReasoningInput:
    report = report_for(s, EVENT)
    now = now_of(s)
    evidence = gather(s, plan_evidence(report, now))
    return ReasoningInput(event_id=EVENT, agent="drift", report=report, evidence=evidence,
                          specialists=specialists or [], unreachable_specialists=unreachable or [], now=now,
                          confidence_threshold=THRESHOLD)


def final_action(rec: Recommendation) -> Action:
    """What the scoring counts: below-threshold confidence needs a human, i.e. escalate."""
    assert rec.action is not None
    return rec.action if rec.confidence >= THRESHOLD else Action.ESCALATE


async def real_specialists(s: dict[str, Any]) -> list[Recommendation]:
    """What the security and compliance agents' own code answers this scenario (see tests/reasoning/specialists)."""
    inp = reasoning_input(s)
    return await answers(inp.report, inp.evidence)


def rename(s: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The same scenario with every occurrence of a name replaced (object names, labels, services)."""
    return json.loads(json.dumps(s).replace(old, new))
