"""Each specialist token is used once, for one event, within its lifetime — through the drift agent's own wiring.

The verifier and replay cache are what agents.drift.wiring builds (verifier_for, the SQLite ReplayStore in
the drift agent's state file); delegate is the real step. Only the specialist's transport is stood in for:
it hands back the token under test as the specialist's A2A answer.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt as pyjwt
import pytest
from pydantic import SecretStr

from agents.drift.config import SpecialistRef
from agents.drift.replay import ReplayStore
from agents.drift.steps import Delegate, DriftState, GraphDeps
from agents.drift.wiring import verifier_for
from protocol.errors import VerificationError
from protocol.models import Action, AnalysisRequest, Domain, DriftReport, Recommendation, SignedRecommendation
from protocol.signing import ALG, Signer, TrustStore, encode_jws, generate_key
from tests.support.drift_core import NOW, FakeObserver, FakeReasoner, FixedClock, PassGuardrail, drift_config, event


class Answers:
    """The specialist's side of A2A: answers each request with the next prepared token."""

    def __init__(self) -> None:
        self.next: SignedRecommendation | None = None

    async def analyze(self, url: str, request: AnalysisRequest, token: str, timeout_s: float) -> SignedRecommendation:
        assert self.next is not None
        return self.next


@pytest.fixture
async def parts(tmp_path: Path):
    sec = generate_key("security")
    drift = generate_key("drift")
    trust = TrustStore()
    trust.add("security", sec)
    trust.add("drift", drift)
    specialists = {"security": SpecialistRef(url="http://security", token=SecretStr("t"))}
    config = drift_config(tmp_path, specialists=specialists)
    answers = Answers()
    async with ReplayStore(config.db_path) as replay:
        deps = GraphDeps(config=config, clock=FixedClock(None, None), observer=FakeObserver(),  # type: ignore[arg-type]
                         tools=None, plan=lambda r, n: [], peers=answers, wants=lambda k, p, r: True,
                         reasoner=FakeReasoner(), signer=Signer("drift", drift), verifier=verifier_for(config, trust),
                         replay=replay, guardrail=PassGuardrail())
        yield Delegate(deps), answers, Signer("security", sec), sec, config


def _state(event_id: str | None = None) -> DriftState:
    ev = event()
    if event_id is not None:
        ev = ev.model_copy(update={"event_id": event_id})
    return DriftState(event=ev, report=DriftReport(event_id=ev.event_id, application="payments-api", project="prod",
                                                    observed_at=NOW))


def _rec(event_id: str) -> Recommendation:
    return Recommendation(event_id=event_id, agent="security", domain=Domain.SECURITY, action=Action.ENFORCE,
                          confidence=0.9, reasoning="privileged container", created_at=datetime.now(UTC))


async def _outcome(delegate: Delegate, state: DriftState, consumer: str) -> str:
    out = await delegate(state, consumer)
    if out.specialists:
        assert [v.claims.issuer for v in out.specialists] == ["security"]
        return "accepted"
    [refused] = out.unreachable
    assert out.answers  # the answer still goes on to the guardrail, which discards it by name
    return refused.reason


async def test_the_same_token_twice_is_refused_and_a_replayed_step_keeps_its_own(parts) -> None:
    delegate, answers, signer, _, _ = parts
    state = _state()
    answers.next = signer.sign_recommendation(_rec(state.event.event_id), ["drift"])
    assert await _outcome(delegate, state, "task-a") == "accepted"
    # the same step replayed after a crash (same LangGraph task id): its own token is still its own
    assert await _outcome(delegate, state, "task-a") == "accepted"
    # any other use of it, for the same event: a replay
    assert await _outcome(delegate, state, "task-b") == "replayed"


async def test_the_replay_cache_survives_a_restart(parts) -> None:
    delegate, answers, signer, _, config = parts
    state = _state()
    answers.next = signer.sign_recommendation(_rec(state.event.event_id), ["drift"])
    assert await _outcome(delegate, state, "task-a") == "accepted"
    async with ReplayStore(config.db_path) as reopened:  # the next process's cache, on the same file
        [accepted] = (await delegate(state, "task-a")).specialists
        with pytest.raises(VerificationError, match="already used"):
            await reopened.consume(accepted.claims, "task-c")


async def test_a_new_token_reusing_a_jti_is_refused(parts) -> None:
    delegate, answers, signer, sec, _ = parts
    state = _state()
    first = signer.sign_recommendation(_rec(state.event.event_id), ["drift"])
    answers.next = first
    assert await _outcome(delegate, state, "task-a") == "accepted"
    jti = pyjwt.decode(first.jws, options={"verify_signature": False})["jti"]
    rec = _rec(state.event.event_id).model_copy(update={"confidence": 0.2})
    now = int(time.time())
    token = encode_jws({"alg": ALG, "kid": sec.kid, "typ": "JWT"},
                       {"iss": "security", "aud": ["drift"], "iat": now, "exp": now + 300, "jti": jti,
                        "evt": state.event.event_id, "rec": rec.model_dump(mode="json")}, sec)
    answers.next = SignedRecommendation(jws=token, recommendation=rec)
    assert await _outcome(delegate, state, "task-b") == "replayed"


async def test_a_token_for_another_event_is_refused(parts) -> None:
    delegate, answers, signer, _, _ = parts
    answers.next = signer.sign_recommendation(_rec(f"evt-{uuid.uuid4()}"), ["drift"])
    assert await _outcome(delegate, _state(), "task-a") == "event_mismatch"


async def test_a_token_valid_beyond_the_maximum_lifetime_is_refused(parts) -> None:
    delegate, answers, sec_signer, sec, config = parts
    assert config.max_token_lifetime_s == 600  # the default the setting documents
    state = _state()
    answers.next = Signer("security", sec, ttl_s=30 * 365 * 24 * 3600).sign_recommendation(
        _rec(state.event.event_id), ["drift"])
    assert await _outcome(delegate, state, "task-a") == "lifetime_too_long"
    answers.next = sec_signer.sign_recommendation(_rec(state.event.event_id), ["drift"])  # the default 10 minutes
    assert await _outcome(delegate, state, "task-b") == "accepted"
