"""Signing and verification: a good token verifies; every named failure is detected as itself."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt as pyjwt
import pytest

from protocol.errors import KeyStoreError, VerificationError, VerifyFailure
from protocol.models import Action, Recommendation, Verdict
from protocol.signing import (
    ALG,
    ReplayCache,
    RequestBinding,
    Signer,
    TrustStore,
    Verifier,
    encode_jws,
    generate_key,
    load_private_key,
    public_jwks,
    write_key_pair,
)

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def _rec(agent: str = "security", event_id: str = "evt-1") -> Recommendation:
    return Recommendation(
        event_id=event_id, agent=agent, domain="security", action=Action.ENFORCE, confidence=0.95,
        reasoning="privileged container", created_at=NOW,
    )


@pytest.fixture
def keys():
    sec, comp = generate_key("security"), generate_key("compliance")
    trust = TrustStore()
    trust.add("security", sec)
    trust.add("compliance", comp)
    return sec, comp, trust


def _fail(verifier: Verifier, token: str, event_id: str | None = "evt-1") -> VerifyFailure:
    with pytest.raises(VerificationError) as exc:
        verifier.verify_recommendation(token, event_id)
    return exc.value.reason


def test_round_trip(keys) -> None:
    sec, _, trust = keys
    signed = Signer("security", sec).sign_recommendation(_rec(), ["drift"])
    got = Verifier(trust, "drift").verify_recommendation(signed.jws, "evt-1")
    assert got == signed.recommendation
    header = json.loads(__import__("base64").urlsafe_b64decode(signed.jws.split(".")[0] + "=="))
    assert header == {"alg": ALG, "kid": sec.kid, "typ": "JWT"}
    # PyJWT (a2a-sdk's JOSE library) verifies it from the published JWK alone
    published = pyjwt.PyJWK(public_jwks([sec])["keys"][0])
    claims = pyjwt.decode(signed.jws, published, algorithms=[published.algorithm_name], audience="drift")
    assert {"iss", "aud", "iat", "exp", "jti", "evt", "rec"} <= claims.keys()


def test_bad_signature(keys) -> None:
    sec, _, trust = keys
    token = Signer("security", sec).sign_recommendation(_rec(), ["drift"]).jws
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    assert _fail(Verifier(trust, "drift"), tampered) is VerifyFailure.BAD_SIGNATURE


def test_payload_swapped_under_a_valid_header_is_a_bad_signature(keys) -> None:
    sec, _, trust = keys
    signer = Signer("security", sec)
    a = signer.sign_recommendation(_rec(), ["drift"]).jws.split(".")
    b = signer.sign_recommendation(_rec(event_id="evt-2"), ["drift"]).jws.split(".")
    assert _fail(Verifier(trust, "drift"), f"{a[0]}.{b[1]}.{a[2]}") is VerifyFailure.BAD_SIGNATURE


def test_unknown_key(keys) -> None:
    _, _, trust = keys
    stranger = generate_key("security")
    token = Signer("security", stranger).sign_recommendation(_rec(), ["drift"]).jws
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.UNKNOWN_KEY


def test_key_of_another_agent(keys) -> None:
    _, comp, trust = keys
    # compliance's key signing a token that claims to come from security
    token = Signer("security", comp).sign_recommendation(_rec(), ["drift"]).jws
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.WRONG_SIGNER


def test_recommendation_attributed_to_another_agent(keys) -> None:
    sec, _, trust = keys
    claims = {"iss": "security", "aud": ["drift"], "iat": int(time.time()), "exp": int(time.time()) + 60,
              "jti": "j1", "evt": "evt-1", "rec": _rec(agent="compliance").model_dump(mode="json")}
    token = encode_jws({"alg": ALG, "kid": sec.kid}, claims, sec)
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.WRONG_SIGNER


def test_expired(keys) -> None:
    sec, _, trust = keys
    token = Signer("security", sec, ttl_s=-60).sign_recommendation(_rec(), ["drift"]).jws
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.EXPIRED


def test_wrong_audience(keys) -> None:
    sec, _, trust = keys
    token = Signer("security", sec).sign_recommendation(_rec(), ["someone-else"]).jws
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.WRONG_AUDIENCE


def test_event_mismatch(keys) -> None:
    sec, _, trust = keys
    token = Signer("security", sec).sign_recommendation(_rec(event_id="evt-1"), ["drift"]).jws
    assert _fail(Verifier(trust, "drift"), token, event_id="evt-9") is VerifyFailure.EVENT_MISMATCH


def test_payload_event_differs_from_evt_claim(keys) -> None:
    sec, _, trust = keys
    claims = {"iss": "security", "aud": ["drift"], "iat": int(time.time()), "exp": int(time.time()) + 60,
              "jti": "j2", "evt": "evt-1", "rec": _rec(event_id="evt-2").model_dump(mode="json")}
    token = encode_jws({"alg": ALG, "kid": sec.kid}, claims, sec)
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.EVENT_MISMATCH


def test_verifying_is_pure_and_using_a_token_is_once(keys) -> None:
    sec, _, trust = keys
    signed = Signer("security", sec).sign_recommendation(_rec(), ["drift"])
    verifier = Verifier(trust, "drift")
    first = verifier.verified_recommendation(signed, "evt-1")
    again = verifier.verified_recommendation(signed, "evt-1")  # a re-check (the guardrail's) is not a use
    assert first.claims == again.claims
    assert (first.claims.issuer, first.claims.key_id, first.claims.event_id) == ("security", sec.kid, "evt-1")
    cache = ReplayCache()
    cache.consume(first.claims)
    with pytest.raises(VerificationError) as err:
        cache.consume(again.claims)
    assert err.value.reason is VerifyFailure.REPLAYED


def test_a_lifetime_beyond_the_maximum_is_refused_by_name(keys) -> None:
    sec, _, trust = keys
    long_lived = Signer("security", sec, ttl_s=30 * 365 * 24 * 3600).sign_recommendation(_rec(), ["drift"]).jws
    assert _fail(Verifier(trust, "drift"), long_lived) is VerifyFailure.LIFETIME_TOO_LONG
    within = Signer("security", sec, ttl_s=300).sign_recommendation(_rec(), ["drift"]).jws
    assert _fail(Verifier(trust, "drift", max_lifetime_s=60), within) is VerifyFailure.LIFETIME_TOO_LONG
    assert Verifier(trust, "drift", max_lifetime_s=600).verify_recommendation(within, "evt-1").agent == "security"


def test_a_carried_recommendation_must_be_the_signed_one(keys) -> None:
    sec, _, trust = keys
    signed = Signer("security", sec).sign_recommendation(_rec(), ["drift"])
    swapped = signed.model_copy(update={"recommendation": _rec(agent="security").model_copy(
        update={"confidence": 0.1})})
    with pytest.raises(VerificationError) as err:
        Verifier(trust, "drift").verified_recommendation(swapped, "evt-1")
    assert err.value.reason is VerifyFailure.INVALID_PAYLOAD


def test_invalid_payload(keys) -> None:
    sec, _, trust = keys
    bad = {**_rec().model_dump(mode="json"), "action": "delete"}
    claims = {"iss": "security", "aud": ["drift"], "iat": int(time.time()), "exp": int(time.time()) + 60,
              "jti": "j3", "evt": "evt-1", "rec": bad}
    token = encode_jws({"alg": ALG, "kid": sec.kid}, claims, sec)
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.INVALID_PAYLOAD


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "eyJhbGciOiJFZDI1NTE5In0.e30.sig"])
def test_malformed(keys, token: str) -> None:
    _, _, trust = keys
    assert _fail(Verifier(trust, "drift"), token) is VerifyFailure.MALFORMED


def test_verdict_round_trip_and_payload_kind(keys) -> None:
    sec, _, trust = keys
    drift_key = generate_key("drift")
    trust.add("drift", drift_key)
    verdict = Verdict(event_id="evt-1", action=Action.ENFORCE, requires_approval=False,
                      allowed_actions=[Action.ENFORCE], confidence=0.9, threshold=0.8, decided_at=NOW)
    signed = Signer("drift", drift_key).sign_verdict(verdict, ["driftwise"])
    assert Verifier(trust, "driftwise").verify_verdict(signed.jws, "evt-1") == verdict
    # a recommendation token is not a verdict
    rec_token = Signer("security", sec).sign_recommendation(_rec(), ["driftwise"]).jws
    with pytest.raises(VerificationError) as exc:
        Verifier(trust, "driftwise").verify_verdict(rec_token, "evt-1")
    assert exc.value.reason is VerifyFailure.INVALID_PAYLOAD


def test_signer_refuses_to_sign_for_another_agent(keys) -> None:
    sec, _, _ = keys
    with pytest.raises(ValueError, match="cannot sign"):
        Signer("security", sec).sign_recommendation(_rec(agent="compliance"), ["drift"])


def test_rotation_several_keys_per_agent(keys) -> None:
    sec, _, trust = keys
    new = generate_key("security")
    trust.add("security", new)
    verifier = Verifier(trust, "drift")
    for key in (sec, new):
        verifier.verify_recommendation(Signer("security", key).sign_recommendation(_rec(), ["drift"]).jws, "evt-1")
    assert len(trust.agents()["security"]) == 2


def test_trust_store_pins_a_key_to_one_agent(keys) -> None:
    sec, _, trust = keys
    with pytest.raises(KeyStoreError, match="pinned"):
        trust.add("compliance", sec)


def test_key_files_and_trust_store_round_trip(tmp_path: Path, keys) -> None:
    _, _, trust = keys
    key = generate_key("drift")
    private, public = write_key_pair(key, "drift", tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    assert "d" not in json.loads(public.read_text())["keys"][0]
    assert load_private_key(private).kid == key.kid
    trust.add_jwks("drift", json.loads(public.read_text()))
    trust.save(tmp_path / "trust.json")
    loaded = TrustStore.load(tmp_path / "trust.json")
    assert loaded.agents().keys() == {"security", "compliance", "drift"}
    token = Signer("drift", key).sign_recommendation(_rec(agent="drift"), ["x"]).jws
    assert Verifier(loaded, "x").verify_recommendation(token, "evt-1").agent == "drift"


def test_key_store_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="keys generate"):
        load_private_key(tmp_path / "missing.json")
    (tmp_path / "pub.json").write_text(json.dumps(generate_key("a").as_dict(private=False)))
    with pytest.raises(KeyStoreError, match="private"):
        load_private_key(tmp_path / "pub.json")
    (tmp_path / "trust.json").write_text("{not json")
    with pytest.raises(KeyStoreError, match="not valid JSON"):
        TrustStore.load(tmp_path / "trust.json")
    with pytest.raises(KeyStoreError, match="agents"):
        TrustStore.from_document({"keys": []})


def test_replay_cache_forgets_expired_and_stays_bounded() -> None:
    cache = ReplayCache(max_entries=3)
    assert cache.check_and_add("a", exp=10, now=0)
    assert not cache.check_and_add("a", exp=10, now=1)
    assert cache.check_and_add("a", exp=30, now=11)  # the first expired, so it is forgotten
    for j in "bcde":
        assert cache.check_and_add(j, exp=100, now=12)
    assert len(cache._seen) <= 3


def test_published_keys_carry_alg_and_tokens_use_eddsa(tmp_path: Path, keys) -> None:
    sec, _, trust = keys
    assert ALG == "EdDSA"
    [jwk] = public_jwks([sec])["keys"]
    assert jwk["alg"] == "EdDSA" and jwk["use"] == "sig" and "d" not in jwk
    _, public = write_key_pair(sec, "security", tmp_path)
    assert json.loads(public.read_text())["keys"][0]["alg"] == "EdDSA"
    assert all(k["alg"] == "EdDSA" for a in trust.to_document()["agents"].values() for k in a["keys"])


def test_rfc9864_ed25519_alg_is_accepted_on_verify(keys) -> None:
    sec, _, trust = keys
    now = int(time.time())
    claims = {"iss": "security", "aud": ["drift"], "iat": now, "exp": now + 60, "jti": "j9", "evt": "evt-1",
              "rec": _rec().model_dump(mode="json")}
    token = encode_jws({"alg": "Ed25519", "kid": sec.kid, "typ": "JWT"}, claims, sec)
    assert Verifier(trust, "drift").verify_recommendation(token, "evt-1") == _rec()


def test_a_published_jwk_round_trips_into_a_trust_store_that_verifies_both_algs(keys) -> None:
    sec, _, _ = keys
    pinned = TrustStore()
    pinned.add_jwks("security", public_jwks([sec]))  # the JWK carries alg EdDSA; it still verifies Ed25519
    now = int(time.time())
    claims = {"iss": "security", "aud": ["drift"], "iat": now, "exp": now + 60, "jti": "j8", "evt": "evt-1",
              "rec": _rec().model_dump(mode="json")}
    for alg in ("EdDSA", "Ed25519"):
        token = encode_jws({"alg": alg, "kid": sec.kid}, claims, sec)
        assert Verifier(pinned, "drift").verify_recommendation(token, "evt-1").agent == "security"


@pytest.mark.parametrize(("change", "match"), [
    ({"alg": "RS256"}, "has alg 'RS256'"), ({"crv": "X25519"}, "not an Ed25519 JWK"), ({"use": "enc"}, "use sig"),
])
def test_a_trusted_key_that_cannot_verify_ed25519_is_refused_by_name(keys, change: dict, match: str) -> None:
    sec, _, _ = keys
    with pytest.raises(KeyStoreError, match=match):
        TrustStore().add("security", {**public_jwks([sec])["keys"][0], **change})


def test_signing_filters_only_joserfcs_eddsa_warning(keys) -> None:
    sec, _, trust = keys
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        token = Signer("security", sec).sign_recommendation(_rec(), ["drift"]).jws
        Verifier(trust, "drift").verify_recommendation(token, "evt-1")
        warnings.warn("another warning still shows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another warning still shows"]


def test_an_answer_binds_the_request_it_answers(keys) -> None:
    sec, _, trust = keys
    asked = RequestBinding(message_id="m-1", task_id="t-1")
    signed = Signer("security", sec).sign_recommendation(_rec(), ["sre-bot"], asked)
    verifier = Verifier(trust, "sre-bot")
    verified = verifier.verified_recommendation(signed, "evt-1", asked)
    assert (verified.claims.message_id, verified.claims.task_id, verified.claims.audience) == ("m-1", "t-1",
                                                                                               ["sre-bot"])
    assert verifier.verified_recommendation(signed, "evt-1", RequestBinding(message_id="m-1")).claims.jti
    for other in (RequestBinding(message_id="m-2"), RequestBinding(message_id="m-1", task_id="t-2")):
        with pytest.raises(VerificationError) as exc:
            verifier.verified_recommendation(signed, "evt-1", other)
        assert exc.value.reason is VerifyFailure.REQUEST_MISMATCH
    unbound = Signer("security", sec).sign_recommendation(_rec(), ["sre-bot"])
    with pytest.raises(VerificationError) as exc:
        verifier.verified_recommendation(unbound, "evt-1", asked)
    assert exc.value.reason is VerifyFailure.REQUEST_MISMATCH
