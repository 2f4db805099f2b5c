"""The drift agent process: webhook intake, decisions API, health, metrics and the A2A face on one port.

`serve(config)` builds everything once (shared httpx client, event store, audit log, checkpointer,
MCP pool, graph, runner), resumes undecided events, then serves until stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.drift.a2a_face import a2a_routes, build_card_for
from agents.drift.config import DriftConfig
from agents.drift.intake import bearer_ok, error, webhook_endpoint
from agents.drift.metrics import CONTENT_TYPE, DriftMetrics
from agents.drift.store import EventStore
from agents.kit.auth import BearerAuth
from agents.kit.card import JWKS_PATH
from protocol.models import ArgoNotification, Decision, DecisionState, DriftEvent

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/webhooks/argocd"
DECISIONS_PATH = "/v1/decisions"
_OWN_AUTH = ("/v1/webhooks/", DECISIONS_PATH)
_PUBLIC = frozenset({"/healthz", "/metrics", "/.well-known/agent-card.json", JWKS_PATH})


class PeerAuth:
    """Bearer auth (kit) on the A2A routes only; the webhook and decisions API check their own tokens."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self._app = app
        self._guarded = BearerAuth(app, tokens, public=_PUBLIC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_OWN_AUTH):
            await self._app(scope, receive, send)
        else:
            await self._guarded(scope, receive, send)


def create_app(
    config: DriftConfig,
    store: EventStore,
    metrics: DriftMetrics,
    on_accepted: Callable[[Decision], Awaitable[None]],
    *,
    ask: Callable[[ArgoNotification], Awaitable[Decision | None]] | None = None,
    card: AgentCard | None = None,
    jwks: dict[str, Any] | None = None,
) -> ASGIApp:
    token = config.approvals_token.get_secret_value()
    webhook = webhook_endpoint(config, store, on_accepted)

    async def counted_webhook(request: Request) -> Response:
        response = await webhook(request)
        metrics.webhooks.labels(outcome=str(response.status_code)).inc()
        return response

    async def list_decisions(request: Request) -> Response:
        if not bearer_ok(request.headers.get("authorization"), token):
            return error(401, "send Authorization: Bearer <drift.approvals_token>")
        state = request.query_params.get("state") or None
        if state is not None and state not in {s.value for s in DecisionState}:
            return error(400, f"state {state!r} is not one of {', '.join(s.value for s in DecisionState)}")
        found = await store.list(request.query_params.get("application") or None, state)
        return JSONResponse({"decisions": [d.model_dump(mode="json") for d in found]})

    async def get_decision(request: Request) -> Response:
        if not bearer_ok(request.headers.get("authorization"), token):
            return error(401, "send Authorization: Bearer <drift.approvals_token>")
        found = await store.get(request.path_params["event_id"])
        if found is None:
            return error(404, f"no decision for event {request.path_params['event_id']}")
        return JSONResponse(found.model_dump(mode="json"))

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True, "agent": config.agent_id})

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def jwks_endpoint(_: Request) -> Response:
        return JSONResponse(jwks or {"keys": []})

    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, counted_webhook, methods=["POST"]),
        Route(DECISIONS_PATH, list_decisions, methods=["GET"]),
        Route(DECISIONS_PATH + "/{event_id}", get_decision, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route(JWKS_PATH, jwks_endpoint, methods=["GET"]),
    ]
    if card is not None and ask is not None:
        routes.extend(a2a_routes(card, ask))
    app = Starlette(routes=routes)
    peer_token = config.peer_token.get_secret_value() if config.peer_token else token
    return PeerAuth(app, [peer_token])


async def serve(config: DriftConfig) -> None:
    """Run the drift agent until stopped."""
    # Heavy, other-owned parts are imported here so that the app module stays importable on its own.
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from agents.drift.audit import AuditLog
    from agents.drift.graph import compile_graph
    from agents.drift.runner import DecisionRunner
    from agents.drift.wiring import build_deps
    from protocol.signing import public_jwks

    config.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = DriftMetrics()
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(5.0)))
        store = EventStore(config.db_path)
        await store.open()
        stack.push_async_callback(store.close)
        audit = AuditLog(config.db_path)
        await audit.open()
        stack.push_async_callback(audit.close)
        saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(config.checkpoint_path)))
        deps, pool = await build_deps(config, http)
        if pool is not None:
            stack.push_async_callback(pool.close)
        graph = compile_graph(deps, saver)
        runner = DecisionRunner(config, graph, store, audit, deps.signer, deps.clock, metrics)
        stack.push_async_callback(runner.close)

        async def ask(notification: ArgoNotification) -> Decision | None:
            import uuid

            event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(notification),
                               received_at=datetime.now(UTC), notification=notification)
            decision, duplicate = await store.accept(event, datetime.now(UTC))
            if not duplicate:
                await runner.submit(decision)
            return await runner.wait(decision.event.event_id, config.decision_deadline_s + 2.0)

        base_url = (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")
        card = build_card_for(config.agent_id, base_url, deps.signer.key)
        app = create_app(config, store, metrics, runner.submit, ask=ask, card=card,
                         jwks=public_jwks([deps.signer.key]))
        resumed = await runner.resume_undecided()
        if resumed:
            log.info("resumed %d undecided event(s)", resumed)
        server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                               access_log=False, lifespan="off"))
        log.info("drift agent serving on %s (state %s)", base_url, config.state_dir)
        await server.serve()
