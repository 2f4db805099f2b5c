"""The guardrail end to end in process: real signatures, the real Rego policy via regopy."""

from __future__ import annotations

from typing import Any

import pytest

from agents.drift.guardrail import Guardrail, PolicyUnavailable, RegoEngine
from protocol.errors import VerifyFailure
from protocol.models import Action, Domain, SignedRecommendation
from protocol.signing import Signer, generate_key
from tests.guardrail.support import DENY_ALL_DAY, NOW, Keys, rec, report


def guardrail(keys: Keys, engine: Any, threshold: float = 0.8) -> Guardrail:
    return Guardrail(keys.verifier(), engine, threshold)


async def test_confident_allow_is_followed_with_its_scope(keys: Keys, engine: RegoEngine) -> None:
    proposal = keys.sign(rec("drift", Action.ALLOW, 0.92, with_scope=True))
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=proposal, specialists=[keys.sign(rec("security", None))],
        expected_specialists=["security"], now=NOW,
    )
    v = out.verdict
    assert (v.action, v.requires_approval) == (Action.ALLOW, False)
    assert v.scope == proposal.recommendation.scope
    assert v.allowed_actions == [Action.ALLOW, Action.DEFER, Action.ENFORCE, Action.ESCALATE]
    assert "policy.proposal" in {r.code for r in v.reasons}
    assert out.opa_input["facts"]["sync_allowed_now"] is True
    assert out.opa_input["facts"]["kinds"] == ["Deployment"]
    assert "reasoning" not in out.opa_input["proposal"]
    assert out.opa_result is not None and out.opa_result["decision_id"]


async def test_low_confidence_needs_a_human(keys: Keys, engine: RegoEngine) -> None:
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.DEFER, 0.79)), specialists=[],
        expected_specialists=[], now=NOW,
    )
    assert out.verdict.action == Action.DEFER and out.verdict.requires_approval
    assert "policy.threshold" in {r.code for r in out.verdict.reasons}


async def test_security_enforce_binds_over_an_allow(keys: Keys, engine: RegoEngine) -> None:
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95, with_scope=True)),
        specialists=[keys.sign(rec("security", Action.ENFORCE, 0.97))], expected_specialists=["security"], now=NOW,
    )
    v = out.verdict
    assert v.action == Action.ENFORCE and v.allowed_actions == [Action.ENFORCE, Action.ESCALATE]
    assert v.scope is None and v.confidence == 0.97


async def test_security_enforce_in_a_deny_window_escalates(keys: Keys, engine: RegoEngine) -> None:
    out = await guardrail(keys, engine).evaluate(
        report=report(windows=[DENY_ALL_DAY]), proposal=keys.sign(rec("drift", Action.ENFORCE, 0.95)),
        specialists=[keys.sign(rec("security", Action.ENFORCE, 0.97))], expected_specialists=["security"], now=NOW,
    )
    v = out.verdict
    assert v.action == Action.ESCALATE and v.requires_approval
    assert v.allowed_actions == [Action.ENFORCE, Action.ESCALATE]
    assert {"policy.sync_window_refuses", "policy.freeze_active"} <= {r.code for r in v.reasons}
    assert out.opa_input["facts"]["freeze_active"] is True


async def test_compliance_escalate_escalates(keys: Keys, engine: RegoEngine) -> None:
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95)),
        specialists=[keys.sign(rec("compliance", Action.ESCALATE, 0.9))], expected_specialists=["compliance"],
        now=NOW,
    )
    assert out.verdict.action == Action.ESCALATE and out.verdict.requires_approval


async def test_second_opinion_disagreeing_shows_both(keys: Keys, engine: RegoEngine) -> None:
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95)), specialists=[],
        expected_specialists=[], now=NOW, second_opinion=rec("drift", Action.ENFORCE, 0.85),
    )
    assert out.verdict.action == Action.ALLOW and out.verdict.requires_approval
    [reason] = [r for r in out.verdict.reasons if r.code == "policy.second_opinion_disagrees"]
    assert "allow" in reason.message and "enforce" in reason.message


def _tampered(signed: SignedRecommendation) -> str:
    head, body, sig = signed.jws.split(".")
    return f"{head}.{body}.{('A' if sig[0] != 'A' else 'B')}{sig[1:]}"


async def test_every_kind_of_bad_signature_is_discarded(keys: Keys, engine: RegoEngine) -> None:
    good = rec("security", Action.ENFORCE, 0.99)
    signed = keys.sign(good)
    stranger = generate_key("security")
    cases: dict[str, SignedRecommendation] = {
        VerifyFailure.BAD_SIGNATURE: SignedRecommendation(jws=_tampered(signed), recommendation=good),
        VerifyFailure.UNKNOWN_KEY: Signer("security", stranger).sign_recommendation(good, ["drift"]),
        VerifyFailure.WRONG_SIGNER: Signer("compliance", keys.keys["security"]).sign_recommendation(
            rec("compliance", Action.ENFORCE, 0.99, domain=Domain.SECURITY), ["drift"]),
        VerifyFailure.EXPIRED: keys.signer("security", ttl_s=-60).sign_recommendation(good, ["drift"]),
        VerifyFailure.WRONG_AUDIENCE: keys.sign(good, audience=["someone-else"]),
        VerifyFailure.EVENT_MISMATCH: keys.sign(rec("security", Action.ENFORCE, 0.99, event_id="evt-other")),
        VerifyFailure.MALFORMED: SignedRecommendation(jws="not-a-jws", recommendation=good),
        VerifyFailure.INVALID_PAYLOAD: SignedRecommendation(
            jws=signed.jws, recommendation=good.model_copy(update={"confidence": 0.1})),
    }
    g = guardrail(keys, engine)
    for reason, bad in cases.items():
        out = await g.evaluate(report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95)),
                               specialists=[bad], expected_specialists=["security"], now=NOW)
        v = out.verdict
        assert [d.reason for d in v.discarded] == [reason], (reason, v.discarded)
        assert out.accepted == [] and out.opa_input["specialists"] == []
        # the dropped security enforce does not bind: the proposal stands, but a human approves
        assert v.action == Action.ALLOW and v.requires_approval, reason
        assert {"policy.recommendation_discarded", "policy.specialist_missing"} <= {r.code for r in v.reasons}


async def test_a_token_carried_twice_counts_once(keys: Keys, engine: RegoEngine) -> None:
    # Using a token once is delegate's replay cache's job (tests/drift/test_replay.py); the guardrail
    # re-checks without it, and still counts one answer per agent.
    signed = keys.sign(rec("security", Action.ENFORCE, 0.99))
    out = await guardrail(keys, engine).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95)), specialists=[signed, signed],
        expected_specialists=["security"], now=NOW,
    )
    assert [d.reason for d in out.verdict.discarded] == ["duplicate"]
    assert out.verdict.action == Action.ENFORCE


async def test_bad_proposal_signature_escalates(keys: Keys, engine: RegoEngine) -> None:
    proposal = keys.sign(rec("drift", Action.ALLOW, 0.95))
    bad = SignedRecommendation(jws=_tampered(proposal), recommendation=proposal.recommendation)
    out = await guardrail(keys, engine).evaluate(report=report(), proposal=bad, specialists=[],
                                                 expected_specialists=[], now=NOW)
    assert out.verdict.action == Action.ESCALATE and out.verdict.requires_approval
    assert out.proposal is None and out.opa_input["proposal"] is None
    assert out.verdict.discarded[0].reason == VerifyFailure.BAD_SIGNATURE


class _Engine:
    name = "fake"

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.result, self.error = result, error

    async def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        if self.error:
            raise self.error
        return {"result": self.result, "decision_id": "d1"}


@pytest.mark.parametrize("engine_", [
    _Engine(error=PolicyUnavailable("connection refused")),
    _Engine(result=None),
    _Engine(result={"action": "delete", "requires_approval": False, "allowed_actions": ["delete"],
                    "confidence": 1.0}),
    _Engine(result={"action": "allow", "requires_approval": False, "allowed_actions": ["enforce"],
                    "confidence": 1.0}),
    _Engine(result={"action": "escalate", "requires_approval": False, "allowed_actions": ["escalate"],
                    "confidence": 1.0}),
    _Engine(result={"action": "allow", "requires_approval": "no", "allowed_actions": ["allow"], "confidence": 1}),
], ids=["unreachable", "no-result", "delete", "not-allowed", "escalate-without-human", "non-bool"])
async def test_policy_failure_fails_closed(keys: Keys, engine_: _Engine) -> None:
    out = await guardrail(keys, engine_).evaluate(
        report=report(), proposal=keys.sign(rec("drift", Action.ALLOW, 0.95)), specialists=[],
        expected_specialists=[], now=NOW,
    )
    v = out.verdict
    assert v.action == Action.ESCALATE and v.requires_approval and v.allowed_actions == [Action.ESCALATE]
    assert v.reasons[0].code.startswith("opa.") and v.reasons[0].source == "guardrail"
