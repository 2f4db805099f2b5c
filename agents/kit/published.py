"""What every agent publishes to strangers: the card, its JWKS and the JSON Schema of the request it takes.

All three are public (no token) and cacheable: `Cache-Control: public, max-age=300` lets a peer keep
them for five minutes, which bounds how long a peer may miss a rotated key (rotate by publishing the
new key beside the old one for longer than that: README, "Query an agent as a peer"). The card's
ETag (a2a-sdk's) lets a peer revalidate it cheaply.
"""

from __future__ import annotations

import re
from typing import Any

from a2a.server.routes import create_agent_card_routes
from a2a.types import AgentCard
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

JWKS_PATH = "/.well-known/jwks.json"
CARD_PATH = "/.well-known/agent-card.json"
SCHEMAS_PREFIX = "/schemas/"
CACHE_CONTROL = "public, max-age=300"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_path(model: type[BaseModel]) -> str:
    """`/schemas/analysis-request.json` for AnalysisRequest: where the model's JSON Schema is served."""
    return SCHEMAS_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", model.__name__).lower() + ".json"


def json_schema(model: type[BaseModel], base_url: str) -> dict[str, Any]:
    """The model's JSON Schema (2020-12, as pydantic writes it), with its own URL as `$id`."""
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": base_url + schema_path(model), **model.model_json_schema()}


def _cached(body: dict[str, Any], media_type: str = "application/json") -> JSONResponse:
    return JSONResponse(body, media_type=media_type, headers={"Cache-Control": CACHE_CONTROL})


def published_routes(
    card: AgentCard, jwks: dict[str, Any], request_model: type[BaseModel], base_url: str,
) -> list[BaseRoute]:
    """The card (a2a-sdk's route, with Cache-Control and ETag), the JWKS and the request's JSON Schema."""
    schema = json_schema(request_model, base_url)

    async def jwks_endpoint(_: Request) -> JSONResponse:
        return _cached(jwks, "application/jwk-set+json")

    async def schema_endpoint(_: Request) -> JSONResponse:
        return _cached(schema, "application/schema+json")

    return [
        *create_agent_card_routes(card, card_url=CARD_PATH, cache_control=CACHE_CONTROL),
        Route(JWKS_PATH, jwks_endpoint, methods=["GET"]),
        Route(schema_path(request_model), schema_endpoint, methods=["GET"]),
    ]


def public_paths(request_model: type[BaseModel]) -> frozenset[str]:
    """The paths a peer reads without a token."""
    return frozenset({CARD_PATH, JWKS_PATH, schema_path(request_model), "/healthz"})
