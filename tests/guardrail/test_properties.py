"""Property tests of the DESIGN.md guardrail invariants, over random recommendations and policy inputs."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.drift.guardrail import Guardrail, PolicyEvaluationError, PolicyUnavailable, RegoEngine
from protocol.models import Action, Domain, SignedRecommendation
from protocol.signing import Signer, generate_key
from tests.guardrail.support import DENY_ALL_DAY, NOW, Keys, rec, report

ACTIONS = [None, *Action]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_STRANGER = generate_key("security")

spec = st.fixed_dictionaries({
    "agent": st.sampled_from(["security", "compliance"]),
    "action": st.sampled_from(ACTIONS),
    "confidence": st.floats(0, 1),
    "domain": st.sampled_from(list(Domain)),
    "corrupt": st.sampled_from([None, None, None, "tamper", "stranger", "expired", "audience"]),
})
case = st.fixed_dictionaries({
    "proposal_action": st.sampled_from(list(Action)),
    "proposal_confidence": st.floats(0, 1),
    "proposal_corrupt": st.sampled_from([None, None, None, "tamper"]),
    "specialists": st.lists(spec, max_size=3),
    "threshold": st.floats(0.5, 0.95),
    "freeze": st.booleans(),
    "second": st.sampled_from(ACTIONS),
})


def _sign(keys: Keys, r: Any, corrupt: str | None) -> SignedRecommendation:
    if corrupt == "stranger":
        return Signer(r.agent, _STRANGER).sign_recommendation(r, ["drift"])
    if corrupt == "expired":
        return keys.signer(r.agent, ttl_s=-60).sign_recommendation(r, ["drift"])
    if corrupt == "audience":
        return keys.sign(r, audience=["elsewhere"])
    signed = keys.sign(r)
    if corrupt == "tamper":
        head, body, sig = signed.jws.split(".")
        return SignedRecommendation(jws=f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}", recommendation=r)
    return signed


def _run(keys: Keys, engine: Any, c: dict[str, Any]):
    proposal = rec("drift", c["proposal_action"], c["proposal_confidence"], with_scope=True)
    specs = [rec(s["agent"], s["action"], s["confidence"], domain=s["domain"]) for s in c["specialists"]]
    second = rec("drift", c["second"], 0.85) if c["second"] else None
    g = Guardrail(keys.verifier(), engine, c["threshold"])
    out = asyncio.run(g.evaluate(
        report=report(windows=[DENY_ALL_DAY] if c["freeze"] else None),
        proposal=_sign(keys, proposal, c["proposal_corrupt"]),
        specialists=[_sign(keys, r, s["corrupt"]) for r, s in zip(specs, c["specialists"], strict=True)],
        expected_specialists=["security"], now=NOW, second_opinion=second,
    ))
    return out, proposal, specs


_BINDING = {"agent": "security", "action": Action.ENFORCE, "confidence": 1.0, "domain": Domain.SECURITY,
            "corrupt": None}


@SETTINGS
@given(c=case)
# the two corners a random run once found: a binding security enforce beside a weak or a tampered proposal
@example(c={"proposal_action": Action.ENFORCE, "proposal_confidence": 0.0, "proposal_corrupt": None,
            "specialists": [_BINDING], "threshold": 0.5, "freeze": False, "second": None})
@example(c={"proposal_action": Action.ALLOW, "proposal_confidence": 0.0, "proposal_corrupt": "tamper",
            "specialists": [_BINDING], "threshold": 0.5, "freeze": False, "second": None})
def test_invariants_hold(keys: Keys, engine: RegoEngine, c: dict[str, Any]) -> None:
    out, proposal, specs = _run(keys, engine, c)
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


junk = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8) | st.sampled_from(
        ["allow", "defer", "enforce", "escalate", "delete", "prune", "recommendation", "security"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["kind", "action", "agent", "domain", "confidence", "scope", "event_id", "sync_allowed_now"]), inner,
        max_size=4),
    max_leaves=12,
)
raw_rec = st.fixed_dictionaries({
    "kind": st.sampled_from(["recommendation", "abstain", "x"]),
    "agent": st.sampled_from(["drift", "security", "compliance", 'q"uote']),
    "domain": st.sampled_from(["security", "compliance", "operational"]),
    "action": st.sampled_from(["allow", "defer", "enforce", "escalate", "delete", "prune", None]),
    "confidence": st.floats(0, 1),
    "event_id": st.sampled_from(["evt-1", "evt-2"]),
    "scope": st.none() | junk,
})


@SETTINGS
@given(
    proposal=st.none() | raw_rec,
    specialists=st.lists(raw_rec, max_size=3),
    facts=st.none() | st.fixed_dictionaries({"application": st.text(max_size=10), "sync_allowed_now": junk,
                                             "freeze_active": st.booleans()}),
    threshold=st.floats(0, 1),
    second=st.none() | raw_rec,
    missing=st.lists(st.sampled_from(["security", "compliance"]), max_size=2),
)
def test_policy_on_any_input(engine: RegoEngine, proposal: Any, specialists: Any, facts: Any, threshold: float,
                             second: Any, missing: list[str]) -> None:
    """The Rego itself, on raw inputs no pydantic model would let through: the invariants still hold."""
    doc = {"event_id": "evt-1", "threshold": threshold, "proposal": proposal, "specialists": specialists,
           "discarded": [], "missing_specialists": missing, "second_opinion": second, "facts": facts}
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
@given(c=case, error=st.sampled_from([PolicyUnavailable("down"), PolicyEvaluationError("bad")]))
def test_policy_failure_always_escalates(keys: Keys, c: dict[str, Any], error: Exception) -> None:
    class Failing:
        name = "failing"

        async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
            raise error

    out, _, _ = _run(keys, Failing(), c)
    assert out.verdict.action == Action.ESCALATE and out.verdict.requires_approval
    assert out.verdict.allowed_actions == [Action.ESCALATE]
