"""The kit's HTTP server: A2A (JSON-RPC at `/`, HTTP+JSON under `/v1`), signed card, JWKS, request schema,
health, auth."""

from __future__ import annotations

import gc
import logging

import httpx
import uvicorn
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.kit.auth import BearerAuth
from agents.kit.card import JSONRPC_PATH, REST_PREFIX, build_card, sign_card
from agents.kit.config import KitConfig
from agents.kit.executor import SpecialistExecutor, ValidatingRequestHandler
from agents.kit.media_type import RestMediaType
from agents.kit.published import public_paths, published_routes
from agents.kit.runtime import Runtime
from agents.kit.specialist import Specialist
from agents.kit.telemetry import instrument, setup_tracing
from protocol.models import AnalysisRequest
from protocol.signing import public_jwks

log = logging.getLogger(__name__)


def build_app(specialist: Specialist, runtime: Runtime) -> Starlette:
    config = runtime.config
    card = sign_card(build_card(type(specialist), config.agent, config.base_url), runtime.key, config.base_url)
    handler = ValidatingRequestHandler(
        agent_executor=SpecialistExecutor(specialist, runtime), task_store=InMemoryTaskStore(), agent_card=card,
    )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "agent": config.agent})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *published_routes(card, public_jwks([runtime.key]), AnalysisRequest, config.base_url),
        *create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH),
        *create_rest_routes(handler, path_prefix=REST_PREFIX),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(BearerAuth, tokens=config.tokens_by_principal, public=public_paths(AnalysisRequest)),
        Middleware(RestMediaType, prefix=REST_PREFIX),
    ])
    app.state.card = card
    return app


async def serve(specialist_cls: type[Specialist], config: KitConfig) -> None:
    """Run one specialist until stopped: keys and trust loaded first (a missing key fails before binding)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(config.peer_timeout_s)) as http:
        runtime = Runtime.create(config, http)
        setup_tracing(f"driftwise-{config.agent}", config.otlp_endpoint, config.service_namespace)
        specialist = specialist_cls(runtime)
        await runtime.start()
        await specialist.start()
        try:
            app = build_app(specialist, runtime)
            instrument(app, http)
            server = uvicorn.Server(uvicorn.Config(
                app, host=config.host, port=config.port, log_level=config.log_level, access_log=False,
                lifespan="off",
            ))
            log.info("%s serving A2A on %s", config.agent, config.base_url)
            gc.freeze()  # what start-up built lives for the whole process: keep it out of every full GC pass
            await server.serve()
        finally:
            await specialist.close()
            await runtime.close()
