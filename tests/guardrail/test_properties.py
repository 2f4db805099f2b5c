"""Property tests of the DESIGN.md guardrail invariants, over random recommendations and policy inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.drift.guardrail import PolicyEvaluationError, PolicyUnavailable, RegoEngine
from protocol.models import Action, Domain
from tests.guardrail.cases import guardrail_case, policy_input, run_case
from tests.guardrail.support import Keys

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


_BINDING = {"agent": "security", "action": Action.ENFORCE, "confidence": 1.0, "domain": Domain.SECURITY,
            "corrupt": None}


@SETTINGS
@given(c=guardrail_case)
# the two corners a random run once found: a binding security enforce beside a weak or a tampered proposal
@example(c={"proposal_action": Action.ENFORCE, "proposal_confidence": 0.0, "proposal_corrupt": None,
            "specialists": [_BINDING], "threshold": 0.5, "freeze": False, "second": None})
@example(c={"proposal_action": Action.ALLOW, "proposal_confidence": 0.0, "proposal_corrupt": "tamper",
            "specialists": [_BINDING], "threshold": 0.5, "freeze": False, "second": None})
def test_invariants_hold(keys: Keys, engine: RegoEngine, c: dict[str, Any]) -> None:
    out, proposal, specs = run_case(keys, engine, c)
    v = out.verdict
    # nothing deletes or prunes; the chosen action is one an approver could choose
    assert v.action in set(Action) and set(v.allowed_actions) <= set(Action) and v.action in v.allowed_actions
    assert v.action != Action.ESCALATE or v.requires_approval
    # bad signatures are discarded and never reach the policy
    corrupted = sum(1 for s in c["specialists"] if s["corrupt"]) + (1 if c["proposal_corrupt"] else 0)
    assert len([d for d in v.discarded if d.reason != "duplicate"]) == corrupted
    accepted = [r for r, s in zip(specs, c["specialists"], strict=True) if not s["corrupt"]]
    assert all(a in accepted for a in out.accepted)
    # a verified security enforce binds, and the verdict's confidence is then its own (policies/guardrail.rego:
    # a widening drift is reverted now, never left waiting); without one, the proposal's invariants hold
    binding = any(a.kind == "recommendation" and a.domain == Domain.SECURITY and a.action == Action.ENFORCE
                  for a in out.accepted)
    if c["proposal_corrupt"] and not binding:
        assert v.action == Action.ESCALATE or (v.action == Action.ENFORCE and v.requires_approval)
    # low confidence -> a human
    if (not c["proposal_corrupt"] and not binding and c["proposal_confidence"] < c["threshold"]
            and v.action == proposal.action):
        assert v.requires_approval
    assert v.confidence >= v.threshold or v.requires_approval
    # a security enforce is never weakened to allow/defer, nor can an approver pick those
    if binding:
        assert v.action in (Action.ENFORCE, Action.ESCALATE)
        assert set(v.allowed_actions) <= {Action.ENFORCE, Action.ESCALATE}
    # an enforce the windows refuse is never taken now
    if c["freeze"]:
        assert v.action != Action.ENFORCE


@SETTINGS
@given(doc=policy_input)
def test_policy_on_any_input(engine: RegoEngine, doc: dict[str, Any]) -> None:
    """The Rego itself, on raw inputs no pydantic model would let through: the invariants still hold."""
    proposal, specialists, facts, threshold = doc["proposal"], doc["specialists"], doc["facts"], doc["threshold"]
    try:
        v = engine.evaluate_sync(doc)["result"]
    except PolicyEvaluationError:
        return  # the guardrail fails closed on this (tested in test_guardrail.py)
    assert v["action"] in {"allow", "defer", "enforce", "escalate"}
    assert set(v["allowed_actions"]) <= {"allow", "defer", "enforce", "escalate"}
    assert v["action"] != "escalate" or v["requires_approval"] is True
    if v["deny"]:
        assert v["action"] == "escalate"
    valid = proposal is not None and proposal["kind"] == "recommendation"
    if valid and proposal["action"] in ("delete", "prune"):
        assert v["action"] == "escalate"
    if v["confidence"] < threshold:
        assert v["requires_approval"] is True
    if facts is None or facts["sync_allowed_now"] is not True:
        assert v["action"] != "enforce"
    if any(s["kind"] == "recommendation" and s["domain"] == "security" and s["action"] == "enforce"
           for s in specialists):
        assert v["action"] in ("enforce", "escalate")
        assert set(v["allowed_actions"]) <= {"enforce", "escalate"}


@SETTINGS
@given(c=guardrail_case, error=st.sampled_from([PolicyUnavailable("down"), PolicyEvaluationError("bad")]))
def test_policy_failure_always_escalates(keys: Keys, c: dict[str, Any], error: Exception) -> None:
    class Failing:
        name = "failing"

        async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
            raise error

    out, _, _ = run_case(keys, Failing(), c)
    assert out.verdict.action == Action.ESCALATE and out.verdict.requires_approval
    assert out.verdict.allowed_actions == [Action.ESCALATE]
