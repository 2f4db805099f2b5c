"""What a kit agent publishes and whom it answers, in process (httpx ASGITransport over the kit's real app):
card and JWKS cacheable, JWKs with `alg`, the request's JSON Schema linked from the card, 415 for a
non-JSON HTTP+JSON body, and answers addressed to the peer the caller's token names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from google.protobuf.json_format import MessageToDict

from agents.kit.card import card_verifier
from agents.kit.client import PeerClient
from agents.kit.config import KitConfig
from agents.kit.errors import PeerProtocolError
from agents.kit.runtime import Runtime
from agents.kit.server import build_app
from agents.kit.specialist import Skill, Specialist
from protocol.errors import VerificationError, VerifyFailure
from protocol.models import Action, AnalysisRequest, Domain, DriftReport, Recommendation, SignedRecommendation
from protocol.signing import RequestBinding, TrustStore, Verifier, generate_key, write_key_pair

BASE = "http://agent.test"
OWN = "own-role-token"
SRE_BOT = "sre-bot-token"


class Echo(Specialist):
    description = "Answers enforce for every drift."
    domain = Domain.OPERATIONAL
    skills = (Skill(id="analyze-echo", name="Echo", description="always enforce", tags=("echo",)),)

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        return self.recommend(request, Action.ENFORCE, 0.9, "echo")


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, TrustStore]]:
    key = generate_key("echo")
    write_key_pair(key, "echo", tmp_path)
    trust = TrustStore()
    trust.add("echo", key)
    trust.save(tmp_path / "trust.json")
    config = KitConfig(agent="echo", port=1, public_url=BASE, token=OWN, peer_tokens={"sre-bot": [SRE_BOT]},
                       keys_dir=tmp_path, trust_store=tmp_path / "trust.json")
    async with httpx.AsyncClient() as inner:
        runtime = Runtime.create(config, inner)
        app = build_app(Echo(runtime), runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            yield http, trust


def _request(requester: str) -> AnalysisRequest:
    from datetime import UTC, datetime

    report = DriftReport(event_id="evt-p", application="a", project="p", observed_at=datetime.now(UTC))
    return AnalysisRequest(event_id="evt-p", requester=requester, report=report)


async def test_card_jwks_and_schema_are_public_cacheable_and_linked(agent) -> None:
    http, trust = agent
    card_response = await http.get("/.well-known/agent-card.json")
    jwks_response = await http.get("/.well-known/jwks.json")
    assert card_response.headers["cache-control"] == jwks_response.headers["cache-control"] == "public, max-age=300"
    assert card_response.headers["etag"]
    [jwk] = jwks_response.json()["keys"]
    assert (jwk["alg"], jwk["use"], jwk["crv"]) == ("EdDSA", "sig", "Ed25519") and "d" not in jwk
    card = await PeerClient(http).card(BASE, 5, signature_verifier=card_verifier(trust.public_keys()))
    [link] = [MessageToDict(e.params) for e in card.capabilities.extensions]
    assert link["model"] == "AnalysisRequest" and link["skills"] == ["analyze-echo"]
    schema_response = await http.get(link["schema"].removeprefix(BASE))
    assert schema_response.status_code == 200 and schema_response.headers["cache-control"] == "public, max-age=300"
    schema = schema_response.json()
    assert schema["$id"] == link["schema"] and schema["title"] == "AnalysisRequest"
    jsonschema.Draft202012Validator(schema).validate(_request("sre-bot").model_dump(mode="json"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"event_id": "e"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_http_json_answers_415_for_a_body_that_is_not_json(agent, content_type: str | None) -> None:
    http, _ = agent
    headers = {"Authorization": f"Bearer {SRE_BOT}", "A2A-Version": "1.0"}
    if content_type:
        headers["Content-Type"] = content_type
    r = await http.post("/v1/message:send", content=b'{"message": {}}', headers=headers)
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"] and r.json()["error"]["code"] == 415


async def test_a_json_body_still_reaches_the_binding(agent) -> None:
    http, _ = agent
    r = await http.post("/v1/message:send", json={"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}},
                        headers={"Authorization": f"Bearer {SRE_BOT}", "A2A-Version": "1.0"})
    assert r.status_code == 400 and "AnalysisRequest" in r.text  # the payload's error, not the media type's


async def test_an_answer_is_addressed_to_the_peer_its_token_names_and_binds_the_request(agent) -> None:
    http, trust = agent
    task, message_id = await PeerClient(http).send(BASE, _request("sre-bot"), SRE_BOT, 5)
    parts = {p.media_type: p.text for a in task.artifacts for p in a.parts}
    signed = SignedRecommendation(jws=parts["application/jwt"],
                                  recommendation=Recommendation.model_validate_json(parts["application/json"]))
    verifier = Verifier(trust, "sre-bot")
    verified = verifier.verified_recommendation(signed, "evt-p", RequestBinding(message_id=message_id,
                                                                                task_id=task.id))
    assert verified.claims.audience == ["sre-bot"]
    assert (verified.claims.message_id, verified.claims.task_id) == (message_id, task.id)
    with pytest.raises(VerificationError) as refused:
        Verifier(trust, "drift").verified_recommendation(signed, "evt-p")
    assert refused.value.reason is VerifyFailure.WRONG_AUDIENCE


async def test_a_peer_cannot_ask_on_anothers_behalf_and_own_agents_name_themselves(agent) -> None:
    http, trust = agent
    peers = PeerClient(http)
    with pytest.raises(PeerProtocolError, match="is not the peer your token names"):
        await peers.analyze(BASE, _request("drift"), SRE_BOT, 5)
    # Driftwise's own agents share the role token and say which of them asks
    signed = await peers.analyze(BASE, _request("drift"), OWN, 5)
    assert Verifier(trust, "drift").verified_recommendation(signed, "evt-p").claims.audience == ["drift"]
