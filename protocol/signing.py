"""Signed recommendations and verdicts: compact JWS in JWT form, Ed25519, keys as JWKs.

Claims: `iss` (agent id), `aud` (who may act on it), `iat`, `exp`, `jti`, `evt` (the drift event
id), `rec` or `vrd` (the payload) and, on an answer to an A2A request, `message_id` and `task_id`
(the request it answers). `kid` in the header names the signing key.

The alg written is `EdDSA` (RFC 8037), the name PyJWT, a2a-sdk's card helpers and most JOSE libraries
know; RFC 9864's fully specified `Ed25519` is accepted on verify too. Every published JWK carries
`alg: EdDSA` and `use: sig` (RFC 7517 §4.2, §4.4). joserfc warns on every EdDSA use because RFC 9864
deprecates the name: that one warning is filtered where this module signs and verifies, nothing else.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from joserfc import jwt
from joserfc.errors import BadSignatureError, DecodeError, JoseError, SecurityWarning
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

ALG = "EdDSA"
"""The alg every token, card signature and published JWK carries (RFC 8037)."""
ACCEPTED_ALGS = (ALG, "Ed25519")
"""Accepted on verify: RFC 8037's name and RFC 9864's fully specified one (the pinned key is OKP/Ed25519)."""
_ALGS = list(ACCEPTED_ALGS)
_EDDSA_DEPRECATED = r"EdDSA is deprecated via RFC 9864"
DEFAULT_TTL_S = 600
DEFAULT_MAX_LIFETIME_S = 600.0
"""The longest a token may still be valid when it is verified: a later `exp` is refused (lifetime_too_long)."""
_M = TypeVar("_M", bound=BaseModel)


def canonical_json(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model as it is signed: stable field names, ISO times, no None dropped."""
    return model.model_dump(mode="json")


def encode_jws(header: Mapping[str, Any], claims: Mapping[str, Any], key: OKPKey) -> str:
    """A compact JWS (JWT form) signed with `key`; the header's alg must be one of ACCEPTED_ALGS."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EDDSA_DEPRECATED, category=SecurityWarning)
        return jwt.encode(dict(header), dict(claims), key, algorithms=_ALGS)


def _decode_jws(token: str, key: OKPKey) -> jwt.Token:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EDDSA_DEPRECATED, category=SecurityWarning)
        return jwt.decode(token, key, algorithms=_ALGS)


# --- keys ---------------------------------------------------------------------------------------


def generate_key(agent: str) -> OKPKey:
    """A fresh Ed25519 key whose kid names its agent and is unique."""
    return OKPKey.generate_key("Ed25519", parameters={"kid": f"{agent}-{uuid.uuid4().hex[:12]}"})


def published_jwk(key: OKPKey) -> dict[str, Any]:
    """The public JWK as peers get it: with `alg` and `use`, so any JOSE library picks the right algorithm."""
    return {**key.as_dict(private=False), "alg": ALG, "use": "sig"}


def import_jwk(jwk: Mapping[str, Any], origin: str) -> OKPKey:
    """An Ed25519 JWK held without its `alg`, so one key verifies both names of the algorithm.

    joserfc refuses a key whose `alg` differs from the token's; the pinned key is what matters."""
    data = dict(jwk)
    alg = data.pop("alg", None)
    if alg is not None and alg not in ACCEPTED_ALGS:
        raise KeyStoreError(f"{origin}: key {data.get('kid')!r} has alg {alg!r}; an Ed25519 key signs "
                            f"{' or '.join(ACCEPTED_ALGS)}")
    if data.get("kty") != "OKP" or data.get("crv") != "Ed25519":
        raise KeyStoreError(f"{origin}: key {data.get('kid')!r} is not an Ed25519 JWK (kty OKP, crv Ed25519)")
    if data.get("use", "sig") != "sig":
        raise KeyStoreError(f"{origin}: key {data.get('kid')!r} has use {data.get('use')!r}; a signing key has use sig")
    try:
        return OKPKey.import_key(data)
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyStoreError(f"{origin}: key {data.get('kid')!r} is not a valid JWK: {exc}") from exc


def write_key_pair(key: OKPKey, agent: str, out: Path) -> tuple[Path, Path]:
    """Write `<agent>.private.jwk.json` (mode 0600) and `<agent>.jwks.json` (public) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    private = out / f"{agent}.private.jwk.json"
    public = out / f"{agent}.jwks.json"
    private.write_text(json.dumps(key.as_dict(private=True), indent=2))
    private.chmod(0o600)
    public.write_text(json.dumps(public_jwks([key]), indent=2))
    return private, public


def load_private_key(path: Path) -> OKPKey:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"signing key {path} does not exist: run `driftwise keys generate`") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyStoreError(f"signing key {path} is not a readable JWK: {exc}") from exc
    if not isinstance(data, dict):
        raise KeyStoreError(f"signing key {path} is not a JWK object")
    key = import_jwk(data, f"signing key {path}")
    if not key.is_private or not key.kid:
        raise KeyStoreError(f"signing key {path} must be a private Ed25519 JWK with a kid")
    return key


def public_jwks(keys: Iterable[OKPKey]) -> dict[str, Any]:
    """A JWKS document (`{"keys": [...]}`) with the public halves only."""
    return {"keys": [published_jwk(k) for k in keys]}


# --- trust store --------------------------------------------------------------------------------


@dataclass
class TrustStore:
    """Pins agent id -> the public keys (by kid) that agent may sign with; several per agent to rotate."""

    _by_kid: dict[str, tuple[str, OKPKey]] = field(default_factory=dict)

    def add(self, agent: str, jwk: Mapping[str, Any] | OKPKey) -> None:
        key = jwk if isinstance(jwk, OKPKey) else import_jwk(jwk, f"a trusted key of agent {agent!r}")
        if key.is_private:
            key = import_jwk(key.as_dict(private=False), f"a trusted key of agent {agent!r}")
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

    def public_keys(self) -> dict[str, OKPKey]:
        """Every pinned key by kid (to verify what any trusted agent signed, e.g. its card)."""
        return {kid: key for kid, (_, key) in self._by_kid.items()}

    def agents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for kid, (agent, _) in self._by_kid.items():
            out.setdefault(agent, []).append(kid)
        return out

    def to_document(self) -> dict[str, Any]:
        """The trust store file: `{"agents": {agent: {"keys": [public JWK, ...]}}}`."""
        doc: dict[str, Any] = {"agents": {}}
        for agent, key in self._by_kid.values():
            doc["agents"].setdefault(agent, {"keys": []})["keys"].append(published_jwk(key))
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
            except (JoseError, ValueError, TypeError, AttributeError) as exc:
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


class RequestBinding(BaseModel):
    """The A2A request an answer answers: its message id and, once the server made one, its task id.

    Signed as the `message_id` and `task_id` claims, so a peer can tie an answer to what it sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(min_length=1)
    task_id: str | None = Field(default=None, min_length=1)


@dataclass
class Signer:
    """Signs an agent's recommendations and verdicts with its private key."""

    agent: str
    key: OKPKey
    ttl_s: int = DEFAULT_TTL_S

    def _sign(
        self, payload_claim: str, payload: BaseModel, event_id: str, audience: list[str],
        answers: RequestBinding | None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.agent,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "evt": event_id,
            payload_claim: canonical_json(payload),
        }
        if answers is not None:
            claims.update(answers.model_dump(exclude_none=True))
        return encode_jws({"alg": ALG, "kid": self.key.kid, "typ": "JWT"}, claims, self.key)

    def sign_recommendation(
        self, rec: Recommendation, audience: list[str], answers: RequestBinding | None = None,
    ) -> SignedRecommendation:
        if rec.agent != self.agent:
            raise ValueError(f"signer {self.agent!r} cannot sign a recommendation made by {rec.agent!r}")
        return SignedRecommendation(jws=self._sign("rec", rec, rec.event_id, audience, answers), recommendation=rec)

    def sign_verdict(
        self, verdict: Verdict, audience: list[str], answers: RequestBinding | None = None,
    ) -> SignedVerdict:
        return SignedVerdict(jws=self._sign("vrd", verdict, verdict.event_id, audience, answers), verdict=verdict)

    def sign_checkpoint(self, checkpoint: AuditCheckpoint) -> SignedCheckpoint:
        """No `exp`: a checkpoint stays evidence for as long as the chain it anchors is kept."""
        claims = {"iss": self.agent, "iat": int(time.time()), "jti": uuid.uuid4().hex,
                  "ckp": canonical_json(checkpoint)}
        jws = encode_jws({"alg": ALG, "kid": self.key.kid, "typ": "JWT"}, claims, self.key)
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
    message_id: str | None = Field(default=None, description="the A2A message this token answers, when it answers one")
    task_id: str | None = Field(default=None, description="the A2A task it was answered in")


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

    def _verify(
        self, token: str, event_id: str | None, claim: str, model: type[_M], answers: RequestBinding | None = None,
    ) -> tuple[_M, TokenClaims]:
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
        if answers is not None:
            _check_binding(claims, answers)
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
            message_id=_str_claim(claims, "message_id"), task_id=_str_claim(claims, "task_id"),
        )

    def _recommendation(
        self, token: str, event_id: str | None, answers: RequestBinding | None = None,
    ) -> tuple[Recommendation, TokenClaims]:
        rec, claims = self._verify(token, event_id, "rec", Recommendation, answers)
        if rec.agent != claims.issuer:
            raise VerificationError(
                VerifyFailure.WRONG_SIGNER, f"{claims.issuer!r} signed a recommendation attributed to {rec.agent!r}"
            )
        return rec, claims

    def verified_recommendation(
        self, signed: SignedRecommendation, event_id: str | None, answers: RequestBinding | None = None,
    ) -> VerifiedRecommendation:
        """`signed` verified, with its claims; the recommendation carried beside the JWS must be the signed one.

        With `answers`, the token must also answer that A2A request (its message id, and its task id if given)."""
        rec, claims = self._recommendation(signed.jws, event_id, answers)
        if rec != signed.recommendation:
            raise VerificationError(VerifyFailure.INVALID_PAYLOAD,
                                    "the recommendation carried beside the JWS differs from the signed one")
        return VerifiedRecommendation(signed=signed, claims=claims)

    def verify_recommendation(self, token: str, event_id: str | None) -> Recommendation:
        return self._recommendation(token, event_id)[0]

    def verify_verdict(self, token: str, event_id: str | None) -> Verdict:
        verdict, _ = self._verify(token, event_id, "vrd", Verdict)
        return verdict

    def verified_verdict(
        self, token: str, event_id: str | None, answers: RequestBinding | None = None,
    ) -> tuple[Verdict, TokenClaims]:
        """A verdict and its claims; with `answers`, it must answer that A2A request."""
        return self._verify(token, event_id, "vrd", Verdict, answers)


def _str_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _check_binding(claims: Mapping[str, Any], answers: RequestBinding) -> None:
    if claims.get("message_id") != answers.message_id:
        raise VerificationError(VerifyFailure.REQUEST_MISMATCH,
                                f"token answers message {claims.get('message_id')!r}, not {answers.message_id!r}")
    if answers.task_id is not None and claims.get("task_id") != answers.task_id:
        raise VerificationError(VerifyFailure.REQUEST_MISMATCH,
                                f"token answers task {claims.get('task_id')!r}, not {answers.task_id!r}")


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
        decoded = _decode_jws(token, key)
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
