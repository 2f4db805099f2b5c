"""Ask an agent as a third-party peer would, and verify everything it says (what `driftwise ask` does).

1. Read the agent's card and verify its signature with a key the trust store pins to the card's name.
2. Read from the card which request its skills take (the JSON Schema it links names the model), and
   validate the request file against it here, before anything is sent.
3. Send it over A2A (a2a-sdk's client) with the peer's bearer token.
4. Verify the signed answer: a pinned key of that agent, `aud` = the peer the token names,
   `message_id`/`task_id` = the request just sent, not expired; and the readable JSON part must be
   exactly what was signed.
"""

from __future__ import annotations

import base64
import json

import httpx
from a2a.types import AgentCard, Task
from a2a.utils.signing import SignatureVerificationError
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ConfigDict, ValidationError

from agents.kit.card import JSON, JWT, card_verifier
from agents.kit.client import PeerClient
from agents.kit.errors import PeerError
from protocol.errors import VerificationError
from protocol.models import AnalysisRequest, ArgoNotification, Recommendation, SignedRecommendation, Verdict
from protocol.signing import RequestBinding, TokenClaims, TrustStore, Verifier

REQUEST_MODELS: dict[str, type[BaseModel]] = {m.__name__: m for m in (AnalysisRequest, ArgoNotification)}


class AskError(Exception):
    """Asking failed; the message says at which step and how to fix it."""


class VerifiedAnswer(BaseModel):
    """What an agent answered, after its card, its signature and its binding to the request all verified."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    card_key_id: str
    claims: TokenClaims
    recommendation: Recommendation | None = None
    verdict: Verdict | None = None


def request_model(card: AgentCard) -> type[BaseModel]:
    """The model the card's request-schema link names (agents.kit.card)."""
    for ext in card.capabilities.extensions:
        name = MessageToDict(ext.params).get("model")
        if name in REQUEST_MODELS:
            return REQUEST_MODELS[name]
    raise AskError(f"the card of {card.name!r} links no request schema this client knows "
                   f"({', '.join(REQUEST_MODELS)})")


def parse_request(card: AgentCard, text: str) -> BaseModel:
    model = request_model(card)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise AskError(f"the request is not a valid {model.__name__} ({where}: {first['msg']}); its JSON Schema "
                       f"is linked from the card") from None


def _signer_kid(card: AgentCard) -> str:
    header = json.loads(_b64(card.signatures[0].protected)) if card.signatures else {}
    return str(header.get("kid", ""))


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _answer_parts(task: Task) -> tuple[str, str, str]:
    for artifact in task.artifacts:
        texts = {p.media_type: p.text for p in artifact.parts if p.HasField("text")}
        if JWT in texts and JSON in texts:
            return artifact.name, texts[JWT], texts[JSON]
    detail = " ".join(p.text for p in task.status.message.parts if p.HasField("text"))
    raise AskError(f"the task ended {task.status.state} without a signed answer: {detail or 'no detail'}")


async def card_of(peers: PeerClient, url: str, trust: TrustStore, timeout_s: float) -> AgentCard:
    try:
        card = await peers.card(url, timeout_s, signature_verifier=card_verifier(trust.public_keys()))
    except (SignatureVerificationError, KeyError) as exc:
        raise AskError(f"the card at {url} is not signed by a key the trust store pins ({exc}): pin the "
                       "agent's JWKS with `driftwise keys trust`") from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise AskError(f"cannot read the card at {url}: {exc}") from exc
    kid = _signer_kid(card)
    owner = trust.lookup(kid)
    if owner is None or owner[0] != card.name:
        raise AskError(f"the card names {card.name!r} but is signed by key {kid!r}, which the trust store pins to "
                       f"{owner[0] if owner else 'no one'!r}")
    return card


async def ask(
    http: httpx.AsyncClient, url: str, text: str, token: str, peer: str, trust: TrustStore, timeout_s: float,
) -> VerifiedAnswer:
    """Send request `text` (JSON) to the agent at `url` as `peer`; its verified answer, or AskError."""
    peers = PeerClient(http)
    card = await card_of(peers, url, trust, timeout_s)
    request = parse_request(card, text)
    try:
        task, message_id = await peers.send(url, request, token, timeout_s)
    except PeerError as exc:
        raise AskError(str(exc)) from exc
    name, jws, readable = _answer_parts(task)
    verifier = Verifier(trust=trust, audience=peer)
    answers = RequestBinding(message_id=message_id, task_id=task.id)
    event_id = request.event_id if isinstance(request, AnalysisRequest) else None
    try:
        if name == "verdict":
            verdict, claims = verifier.verified_verdict(jws, event_id, answers)
            answer = VerifiedAnswer(agent=card.name, card_key_id=_signer_kid(card), claims=claims, verdict=verdict)
        else:
            verified = verifier.verified_recommendation(_signed(jws, readable), event_id, answers)
            answer = VerifiedAnswer(agent=card.name, card_key_id=_signer_kid(card), claims=verified.claims,
                                    recommendation=verified.recommendation)
    except VerificationError as exc:
        raise AskError(f"the answer of {card.name!r} does not verify: {exc}") from exc
    if answer.claims.issuer != card.name:
        raise AskError(f"the answer is signed by {answer.claims.issuer!r}, not by {card.name!r} whose card was read")
    signed = answer.verdict or answer.recommendation
    if signed is None or json.loads(readable) != signed.model_dump(mode="json"):
        raise AskError("the readable JSON part differs from what the token signs")
    return answer


def _signed(jws: str, readable: str) -> SignedRecommendation:
    try:
        return SignedRecommendation(jws=jws, recommendation=Recommendation.model_validate_json(readable))
    except ValidationError as exc:
        raise AskError(f"the readable part is not a Recommendation: {exc.errors()[0]['msg']}") from None
