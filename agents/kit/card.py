"""The agent card: built from the specialist's class attributes and signed (JWS, EdDSA over Ed25519).

The card links the JSON Schema of the request its skills take through an AgentExtension whose `uri` is
the schema's URL (params: the skills, the part's media type), so a peer in any language can build a
valid request from the card alone."""

from __future__ import annotations

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import TransportProtocol
from a2a.utils.signing import create_agent_card_signer, create_signature_verifier
from google.protobuf.struct_pb2 import Struct
from joserfc.jwk import OKPKey
from jwt import PyJWK
from pydantic import BaseModel

from agents.kit.errors import KitConfigError
from agents.kit.published import JWKS_PATH, schema_path
from agents.kit.specialist import Specialist
from protocol.models import AnalysisRequest
from protocol.signing import ALG, published_jwk

JSON = "application/json"
JWT = "application/jwt"
CARD_ALG = ALG  # EdDSA: PyJWT's (and a2a-sdk's card helpers') name for Ed25519 signatures
BEARER = "bearer"
JSONRPC_PATH = "/"
REST_PREFIX = "/v1"


def _check_skills(specialist: type[Specialist]) -> None:
    """A2A 1.0 requires a card with at least one skill, each with an id, a name, a description and tags:
    refuse to start without them rather than publish a card peers may reject."""
    where = f"{specialist.__module__}.{specialist.__qualname__}.skills"
    if not specialist.skills:
        raise KitConfigError(f"{where} is empty: declare at least one Skill(id=, name=, description=, tags=(...))")
    for skill in specialist.skills:
        missing = [f for f in ("id", "name", "description", "tags") if not getattr(skill, f)]
        if missing:
            raise KitConfigError(
                f"{where}: Skill {skill.id or skill.name!r} lacks {', '.join(missing)} (A2A requires them on the "
                'card), e.g. tags=("cost", "drift")'
            )


def build_card(
    specialist: type[Specialist], agent: str, base_url: str, request_model: type[BaseModel] = AnalysisRequest,
) -> AgentCard:
    _check_skills(specialist)
    skills = [
        AgentSkill(
            id=s.id, name=s.name, description=s.description, tags=list(s.tags), examples=list(s.examples),
            input_modes=[JSON], output_modes=[JWT, JSON],
        )
        for s in specialist.skills
    ]
    return AgentCard(
        name=agent,
        description=specialist.description,
        version=specialist.version,
        provider=AgentProvider(organization="Driftwise", url=base_url),
        supported_interfaces=[
            AgentInterface(url=base_url + JSONRPC_PATH, protocol_binding=TransportProtocol.JSONRPC,
                           protocol_version="1.0"),
            AgentInterface(url=base_url + REST_PREFIX, protocol_binding=TransportProtocol.HTTP_JSON,
                           protocol_version="1.0"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False, extensions=[
            _request_schema(request_model, base_url, [s.id for s in specialist.skills]),
        ]),
        security_schemes={
            BEARER: SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="bearer", description="per-peer bearer token (settings specialists.<agent>.token)",
            )),
        },
        security_requirements=[SecurityRequirement(schemes={BEARER: StringList(list=[])})],
        default_input_modes=[JSON],
        default_output_modes=[JWT, JSON],
        skills=skills,
    )


def _request_schema(model: type[BaseModel], base_url: str, skills: list[str]) -> AgentExtension:
    params = Struct()
    params.update({"schema": base_url + schema_path(model), "model": model.__name__, "skills": skills,
                   "partMediaType": JSON})
    return AgentExtension(
        uri=base_url + schema_path(model), required=False, params=params,
        description=f"JSON Schema (2020-12) of the {model.__name__} each skill takes, sent as the message's "
                    f"{JSON} text part",
    )


def _pyjwk(key: OKPKey, private: bool) -> PyJWK:
    jwk = {**key.as_dict(private=True), "alg": CARD_ALG} if private else published_jwk(key)
    return PyJWK(jwk, algorithm=CARD_ALG)


def sign_card(card: AgentCard, key: OKPKey, base_url: str) -> AgentCard:
    """Append a JWS signature over the card's canonical (RFC 8785) form, naming the key and where to get it."""
    signer = create_agent_card_signer(
        signing_key=_pyjwk(key, private=True),
        protected_header={"kid": key.kid or "", "alg": CARD_ALG, "jku": base_url + JWKS_PATH, "typ": "JOSE"},
    )
    return signer(card)


def card_verifier(keys: dict[str, OKPKey]):
    """A verifier for `A2ACardResolver.get_agent_card(signature_verifier=...)` over known public keys by kid."""

    def provider(kid: str | None, _jku: str | None) -> PyJWK:
        if kid is None or kid not in keys:
            raise KeyError(f"no trusted key {kid!r}")
        return _pyjwk(keys[kid], private=False)

    return create_signature_verifier(provider, [CARD_ALG])
