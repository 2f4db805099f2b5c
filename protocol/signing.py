"""Signed recommendations and verdicts: compact JWS in JWT form, Ed25519, keys as JWKs.

Claims: `iss` (agent id), `aud` (who may act on it), `iat`, `exp`, `jti`, `evt` (the drift event
id) and `rec` or `vrd` (the payload). `kid` in the header names the signing key. The alg is
`Ed25519` (RFC 9864's fully specified name for EdDSA over Ed25519; joserfc deprecates "EdDSA").
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from joserfc import jwt
from joserfc.errors import BadSignatureError, DecodeError, JoseError
from joserfc.jwk import OKPKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.errors import KeyStoreError, VerificationError, VerifyFailure
from protocol.models import (
    AuditCheckpoint,
    Recommendation,
    SignedCheckpoint,
    SignedRecommendation,
    SignedVerdict,
    Verdict,
)

ALG = "Ed25519"
_ALGS = [ALG]
DEFAULT_TTL_S = 600
DEFAULT_MAX_LIFETIME_S = 600.0
"""The longest a token may still be valid when it is verified: a later `exp` is refused (lifetime_too_long)."""
_M = TypeVar("_M", bound=BaseModel)


def canonical_json(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model as it is signed: stable field names, ISO times, no None dropped."""
    return model.model_dump(mode="json")


# --- keys ---------------------------------------------------------------------------------------


def generate_key(agent: str) -> OKPKey:
    """A fresh Ed25519 key whose kid names its agent and is unique."""
    return OKPKey.generate_key("Ed25519", parameters={"kid": f"{agent}-{uuid.uuid4().hex[:12]}"})


def write_key_pair(key: OKPKey, agent: str, out: Path) -> tuple[Path, Path]:
    """Write `<agent>.private.jwk.json` (mode 0600) and `<agent>.jwks.json` (public) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    private = out / f"{agent}.private.jwk.json"
    public = out / f"{agent}.jwks.json"
    private.write_text(json.dumps(key.as_dict(private=True), indent=2))
    private.chmod(0o600)
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2))
    return private, public


def load_private_key(path: Path) -> OKPKey:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"signing key {path} does not exist: run `driftwise keys generate`") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyStoreError(f"signing key {path} is not a readable JWK: {exc}") from exc
    try:
        key = OKPKey.import_key(data)
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyStoreError(f"signing key {path} is not an Ed25519 JWK: {exc}") from exc
    if not key.is_private or not key.kid:
        raise KeyStoreError(f"signing key {path} must be a private Ed25519 JWK with a kid")
    return key


def public_jwks(keys: Iterable[OKPKey]) -> dict[str, Any]:
    """A JWKS document (`{"keys": [...]}`) with the public halves only."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


# --- trust store --------------------------------------------------------------------------------


@dataclass
class TrustStore:
    """Pins agent id -> the public keys (by kid) that agent may sign with; several per agent to rotate."""

    _by_kid: dict[str, tuple[str, OKPKey]] = field(default_factory=dict)

    def add(self, agent: str, jwk: Mapping[str, Any] | OKPKey) -> None:
        key = jwk if isinstance(jwk, OKPKey) else OKPKey.import_key(dict(jwk))
        if key.is_private:
            key = OKPKey.import_key(key.as_dict(private=False))
        if not key.kid:
            raise KeyStoreError(f"a trusted key of agent {agent!r} has no kid")
        owner = self._by_kid.get(key.kid)
        if owner and owner[0] != agent:
            raise KeyStoreError(f"key {key.kid} is pinned to {owner[0]!r}, cannot also trust it for {agent!r}")
        self._by_kid[key.kid] = (agent, key)

    def add_jwks(self, agent: str, jwks: Mapping[str, Any]) -> None:
        for jwk in jwks.get("keys", []):
            self.add(agent, jwk)

    def lookup(self, kid: str) -> tuple[str, OKPKey] | None:
        return self._by_kid.get(kid)

    def agents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for kid, (agent, _) in self._by_kid.items():
            out.setdefault(agent, []).append(kid)
        return out

    def to_document(self) -> dict[str, Any]:
        """The trust store file: `{"agents": {agent: {"keys": [public JWK, ...]}}}`."""
        doc: dict[str, Any] = {"agents": {}}
        for agent, key in self._by_kid.values():
            doc["agents"].setdefault(agent, {"keys": []})["keys"].append(key.as_dict(private=False))
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, origin: str = "trust store") -> TrustStore:
        store = cls()
        agents = doc.get("agents")
        if not isinstance(agents, Mapping):
            raise KeyStoreError(f"{origin}: expected an object with an `agents` mapping")
        for agent, entry in agents.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("keys"), list):
                raise KeyStoreError(f"{origin}: agents.{agent} needs a `keys` list of public JWKs")
            try:
                store.add_jwks(agent, entry)
            except (JoseError, ValueError, TypeError) as exc:
                raise KeyStoreError(f"{origin}: agents.{agent} holds a key that is not a JWK: {exc}") from exc
        return store

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise KeyStoreError(f"trust store {path} does not exist: run `driftwise keys trust`") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise KeyStoreError(f"trust store {path} is not valid JSON: {exc}") from exc
        return cls.from_document(doc, origin=str(path))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_document(), indent=2))


# --- signing ------------------------------------------------------------------------------------


@dataclass
class Signer:
    """Signs an agent's recommendations and verdicts with its private key."""

    agent: str
    key: OKPKey
    ttl_s: int = DEFAULT_TTL_S

    def _sign(self, payload_claim: str, payload: BaseModel, event_id: str, audience: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.agent,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "evt": event_id,
            payload_claim: canonical_json(payload),
        }
        return jwt.encode({"alg": ALG, "kid": self.key.kid, "typ": "JWT"}, claims, self.key, algorithms=_ALGS)

    def sign_recommendation(self, rec: Recommendation, audience: list[str]) -> SignedRecommendation:
        if rec.agent != self.agent:
            raise ValueError(f"signer {self.agent!r} cannot sign a recommendation made by {rec.agent!r}")
        return SignedRecommendation(jws=self._sign("rec", rec, rec.event_id, audience), recommendation=rec)

    def sign_verdict(self, verdict: Verdict, audience: list[str]) -> SignedVerdict:
        return SignedVerdict(jws=self._sign("vrd", verdict, verdict.event_id, audience), verdict=verdict)

    def sign_checkpoint(self, checkpoint: AuditCheckpoint) -> SignedCheckpoint:
        """No `exp`: a checkpoint stays evidence for as long as the chain it anchors is kept."""
        claims = {"iss": self.agent, "iat": int(time.time()), "jti": uuid.uuid4().hex,
                  "ckp": canonical_json(checkpoint)}
        jws = jwt.encode({"alg": ALG, "kid": self.key.kid, "typ": "JWT"}, claims, self.key, algorithms=_ALGS)
        return SignedCheckpoint(jws=jws, checkpoint=checkpoint)


class TokenClaims(BaseModel):
    """What a verified token established: who signed it with which key, for whom, about which event, until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="the agent id that owns the signing key (checked against the trust store)")
    key_id: str
    audience: list[str]
    event_id: str
    jti: str = Field(min_length=1)
    issued_at: float | None = None
    expires_at: float


class VerifiedRecommendation(BaseModel):
    """A specialist's signed answer after it verified (and, where it was accepted, after its `jti` was used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signed: SignedRecommendation
    claims: TokenClaims

    @property
    def recommendation(self) -> Recommendation:
        return self.signed.recommendation


class ReplayCache:
    """In-memory `jti`s seen until their tokens expire, for a process whose acceptances need not survive it.

    Bounded so it cannot grow without limit; tokens live at most Verifier.max_lifetime_s, so forgetting
    an expired `jti` cannot let its token in again."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def check_and_add(self, jti: str, exp: float, now: float) -> bool:
        """True when `jti` is new (and now remembered); False when it was seen before."""
        while self._seen and (next(iter(self._seen.values())) < now or len(self._seen) >= self._max):
            self._seen.popitem(last=False)
        if jti in self._seen:
            return False
        self._seen[jti] = exp
        return True

    def consume(self, claims: TokenClaims) -> None:
        """Accept a verified token once; a second use raises VerificationError(REPLAYED)."""
        if not self.check_and_add(claims.jti, claims.expires_at, time.time()):
            raise VerificationError(VerifyFailure.REPLAYED, f"jti {claims.jti!r} was already used")


@dataclass
class Verifier:
    """Verifies tokens against a trust store for one audience; each failure raises a named reason.

    Verifying is pure (signature, signer, audience, event binding, expiry, lifetime): checking a token
    again is always safe. Using it once is the caller's separate step (ReplayCache, or the drift agent's
    persisted agents.drift.replay.ReplayStore), so a re-check never counts as a second use."""

    trust: TrustStore
    audience: str
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S
    leeway_s: int = 5

    def _verify(self, token: str, event_id: str | None, claim: str, model: type[_M]) -> tuple[_M, TokenClaims]:
        owner, kid, claims = _decode_pinned(self.trust, token)
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + self.leeway_s < now:
            raise VerificationError(VerifyFailure.EXPIRED, f"token from {owner!r} expired at {exp}")
        if exp - now > self.max_lifetime_s + self.leeway_s:
            raise VerificationError(
                VerifyFailure.LIFETIME_TOO_LONG,
                f"token from {owner!r} is valid for {exp - now:.0f}s more; at most {self.max_lifetime_s:g}s is "
                "accepted (the signer's ttl must not exceed the verifier's max_token_lifetime_s)",
            )
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if self.audience not in auds:
            raise VerificationError(VerifyFailure.WRONG_AUDIENCE, f"token is for {auds}, not {self.audience!r}")
        if event_id is not None and claims.get("evt") != event_id:
            raise VerificationError(
                VerifyFailure.EVENT_MISMATCH, f"token is about event {claims.get('evt')!r}, not {event_id!r}"
            )
        jti, iat = claims.get("jti"), claims.get("iat")
        if not isinstance(jti, str) or not jti or not isinstance(claims.get("evt"), str):
            raise VerificationError(VerifyFailure.MALFORMED, "the token has no `jti` or no `evt` string claim")
        try:
            payload = model.model_validate(claims.get(claim))
        except ValidationError as exc:
            raise VerificationError(
                VerifyFailure.INVALID_PAYLOAD, f"`{claim}` is not a valid {model.__name__}: {exc.errors()[0]['msg']}"
            ) from exc
        if getattr(payload, "event_id", claims.get("evt")) != claims.get("evt"):
            raise VerificationError(VerifyFailure.EVENT_MISMATCH, "payload event_id differs from the evt claim")
        return payload, TokenClaims(
            issuer=owner, key_id=kid, audience=[str(a) for a in auds], event_id=claims["evt"], jti=jti,
            issued_at=float(iat) if isinstance(iat, int | float) else None, expires_at=float(exp),
        )

    def _recommendation(self, token: str, event_id: str | None) -> tuple[Recommendation, TokenClaims]:
        rec, claims = self._verify(token, event_id, "rec", Recommendation)
        if rec.agent != claims.issuer:
            raise VerificationError(
                VerifyFailure.WRONG_SIGNER, f"{claims.issuer!r} signed a recommendation attributed to {rec.agent!r}"
            )
        return rec, claims

    def verified_recommendation(self, signed: SignedRecommendation, event_id: str | None) -> VerifiedRecommendation:
        """`signed` verified, with its claims; the recommendation carried beside the JWS must be the signed one."""
        rec, claims = self._recommendation(signed.jws, event_id)
        if rec != signed.recommendation:
            raise VerificationError(VerifyFailure.INVALID_PAYLOAD,
                                    "the recommendation carried beside the JWS differs from the signed one")
        return VerifiedRecommendation(signed=signed, claims=claims)

    def verify_recommendation(self, token: str, event_id: str | None) -> Recommendation:
        return self._recommendation(token, event_id)[0]

    def verify_verdict(self, token: str, event_id: str | None) -> Verdict:
        verdict, _ = self._verify(token, event_id, "vrd", Verdict)
        return verdict


def _decode_pinned(trust: TrustStore, token: str) -> tuple[str, str, dict[str, Any]]:
    """The claims of a token whose kid the trust store pins and whose signature and `iss` match; its owner and kid."""
    try:
        header = json.loads(_b64url_decode(token.split(".")[0]))
        kid = header["kid"]
    except Exception as exc:  # any parse problem of an untrusted token is "malformed"
        raise VerificationError(VerifyFailure.MALFORMED, f"not a compact JWS with a kid: {exc}") from exc
    pinned = trust.lookup(kid)
    if pinned is None:
        raise VerificationError(VerifyFailure.UNKNOWN_KEY, f"no trusted key has kid {kid!r}")
    owner, key = pinned
    try:
        decoded = jwt.decode(token, key, algorithms=_ALGS)
    except BadSignatureError as exc:
        raise VerificationError(VerifyFailure.BAD_SIGNATURE, f"signature by kid {kid!r} is invalid") from exc
    except (DecodeError, JoseError, ValueError) as exc:
        raise VerificationError(VerifyFailure.MALFORMED, str(exc)) from exc
    claims = decoded.claims
    if claims.get("iss") != owner:
        raise VerificationError(
            VerifyFailure.WRONG_SIGNER, f"key {kid!r} belongs to {owner!r}, token claims {claims.get('iss')!r}"
        )
    return owner, kid, claims


def verify_checkpoint(trust: TrustStore, token: str, signer: str) -> AuditCheckpoint:
    """An audit checkpoint signed by agent `signer` with a key the trust store pins to it."""
    owner, _, claims = _decode_pinned(trust, token)
    if owner != signer:
        raise VerificationError(VerifyFailure.WRONG_SIGNER, f"checkpoint signed by {owner!r}, not {signer!r}")
    try:
        return AuditCheckpoint.model_validate(claims.get("ckp"))
    except ValidationError as exc:
        raise VerificationError(
            VerifyFailure.INVALID_PAYLOAD, f"`ckp` is not a valid AuditCheckpoint: {exc.errors()[0]['msg']}"
        ) from exc


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
