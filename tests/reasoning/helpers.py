"""Run the evidence plan and the rules reasoner over a scenario dict (typed inputs, no processes)."""

from __future__ import annotations

import json
from typing import Any

from agents.drift.evidence_plan import plan_evidence
from agents.drift.reasoning.base import ReasoningInput
from protocol.models import Action, Domain, Recommendation
from tests.reasoning.world import finding, gather, now_of, report_for, specialist

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


def typical_specialists(s: dict[str, Any]) -> list[Recommendation]:
    """What the security and compliance agents would say, judged from the scenario's labelled `why`/tags."""
    at = now_of(s)
    tags = set(s.get("tags") or [])
    out = []
    if "secrets" in tags:
        out.append(specialist(EVENT, "security", Domain.SECURITY, "escalate", "Secret value changed", at))
    elif "security" in tags:
        out.append(specialist(EVENT, "security", Domain.SECURITY, "enforce", "widens privilege", at,
                              [finding("security.widened", "privilege widened")]))
    else:
        out.append(specialist(EVENT, "security", Domain.SECURITY, None, "nothing in my domain", at))
    labels = [o["metadata"].get("labels") or {} for o in (s.get("kubernetes") or {}).get("objects") or []
              if o["kind"] == "Namespace"]
    if any("driftwise.io/compliance" in lab for lab in labels) and any(
            w["kind"] == "deny" for w in s["argocd"]["project"]["spec"].get("syncWindows") or []):
        out.append(specialist(EVENT, "compliance", Domain.COMPLIANCE, "escalate", "regulated scope in a freeze", at))
    else:
        out.append(specialist(EVENT, "compliance", Domain.COMPLIANCE, None, "nothing in my domain", at))
    return out


def rename(s: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The same scenario with every occurrence of a name replaced (object names, labels, services)."""
    return json.loads(json.dumps(s).replace(old, new))
