"""A stranger's peer, in Python, run from its own fresh virtualenv: a2a-sdk to discover and ask, PyJWT to verify.

    python peer.py URL TOKEN PEER_ID REQUEST.json JWKS.json

JWKS.json is the agent's JWKS as the peer pinned it beforehand. Imports nothing of Driftwise. Prints one
JSON line saying what it verified; any failure exits non-zero with the reason on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from importlib.metadata import version

import httpx
import jwt
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageRequest
from a2a.utils.signing import create_signature_verifier
from google.protobuf.json_format import MessageToDict


def fail(message: str) -> None:
    print(f"python peer: {message}", file=sys.stderr)
    raise SystemExit(1)


async def main(url: str, token: str, peer: str, request: str, pinned: dict) -> dict:
    keys = {k["kid"]: jwt.PyJWK(k) for k in pinned["keys"]}
    card_kids: list[str] = []

    def key_for(kid: str | None, _jku: str | None) -> jwt.PyJWK:
        if kid not in keys:
            raise KeyError(f"card signed by kid {kid!r}, which is not pinned")
        card_kids.append(kid)
        return keys[kid]

    async with httpx.AsyncClient(timeout=15) as http:
        # 1. Discover: the card, its signature checked against the pinned JWKS by a2a-sdk's own helper.
        card = await A2ACardResolver(http, url).get_agent_card(
            signature_verifier=create_signature_verifier(key_for, ["EdDSA"]))
        links = [MessageToDict(e.params) for e in card.capabilities.extensions]
        schema_url = next((p["schema"] for p in links if "schema" in p), None)
        if schema_url is None:
            fail("the card links no request schema")
        schema = (await http.get(schema_url)).json()
        cache_control = (await http.get(f"{url}/.well-known/jwks.json")).headers.get("cache-control")

        # 2. Ask, with the peer's bearer token.
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER,
                          parts=[Part(text=request, media_type="application/json")])
        context = ClientCallContext(service_parameters={"Authorization": f"Bearer {token}"})
        task = None
        async for event in client.send_message(SendMessageRequest(message=message), context=context):
            if event.HasField("task"):
                task = event.task
        if task is None or not task.artifacts:
            fail(f"no signed answer: {task}")
        parts = {p.media_type: p.text for a in task.artifacts for p in a.parts}
        jws, readable = parts.get("application/jwt"), parts.get("application/json")
        if not jws or not readable:
            fail("the answer has no application/jwt + application/json parts")

    # 3. Verify the answer with PyJWT: pinned key by kid, signer, audience = this peer, the request it answers.
    header = jwt.get_unverified_header(jws)
    if header.get("kid") not in keys:
        fail(f"answer signed by kid {header.get('kid')!r}, which is not pinned")
    claims = jwt.decode(jws, keys[header["kid"]], algorithms=["EdDSA"], audience=peer, issuer=card.name,
                        options={"require": ["exp", "iat", "jti", "aud", "iss"]})
    if claims.get("message_id") != message.message_id:
        fail(f"answer binds message {claims.get('message_id')!r}, not {message.message_id!r}")
    if claims.get("task_id") != task.id:
        fail(f"answer binds task {claims.get('task_id')!r}, not {task.id!r}")
    signed = claims.get("rec") or claims.get("vrd")
    if json.loads(readable) != signed:
        fail("the readable part differs from the signed one")
    return {"peer": "python", "a2a_sdk": version("a2a-sdk"), "pyjwt": version("PyJWT"), "agent": card.name,
            "card_kid": card_kids[0], "alg": header["alg"], "kid": header["kid"], "aud": claims["aud"],
            "iss": claims["iss"], "message_id": message.message_id, "task_id": task.id,
            "kind": "recommendation" if "rec" in claims else "verdict", "action": signed.get("action"),
            "schema_id": schema.get("$id"), "schema_title": schema.get("title"), "cache_control": cache_control}


if __name__ == "__main__":
    url_, token_, peer_, request_file, jwks_file = sys.argv[1:6]
    with open(request_file) as f:
        request_text = f.read()
    with open(jwks_file) as f:
        jwks_doc = json.load(f)
    print(json.dumps(asyncio.run(main(url_, token_, peer_, request_text, jwks_doc))))
