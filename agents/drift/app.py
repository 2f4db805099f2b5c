"""The drift agent process: webhook intake, decisions and approvals API, health, metrics, A2A face on one port.

`serve(config)` builds everything once (shared httpx client, event store, audit log, checkpointer,
acting store, MCP pool, graph, runner), resolves Argo CD writes a crash left unconfirmed
(Applier.recover), resumes undecided events, starts the scheduler (deferred syncs, allowance
expiries, on Driftwise's clock) and the re-read of governed applications, then serves until stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import uvicorn
from a2a.types import AgentCard
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.drift.a2a_face import a2a_routes, build_card_for
from agents.drift.approvers import Approvers
from agents.drift.config import DriftConfig
from agents.drift.console import PREFIX as CONSOLE_PREFIX
from agents.drift.console import ConsoleDeps, console_app
from agents.drift.console.session import signing_key
from agents.drift.identity import IdentityRefused, ProxyTrust, asserted, peer_of
from agents.drift.intake import BadRequest, bearer_ok, error, field_error, printable, read_json_object, webhook_endpoint
from agents.drift.metrics import CONTENT_TYPE, DriftMetrics
from agents.drift.openapi import (
    DECISIONS_PATH,
    MAX_WAIT_S,
    OPENAPI_PATH,
    OPERATIONS,
    REPORT_PATH,
    UNTIL,
    openapi_document,
)
from agents.drift.readiness import Readiness
from agents.drift.report import ReportError, parse_since
from agents.drift.store import EventStore
from agents.kit.auth import BearerAuth
from agents.kit.card import REST_PREFIX
from agents.kit.media_type import RestMediaType
from agents.kit.published import JWKS_PATH, public_paths
from protocol.models import Approval, ArgoNotification, Decision, DecisionList, DecisionState, DriftEvent
from protocol.report import AgreementReport
from protocol.signing import Signer
from protocol.tokens import accepted

log = logging.getLogger(__name__)

_OWN_AUTH = ("/v1/webhooks/", DECISIONS_PATH, REPORT_PATH, CONSOLE_PREFIX)
REPORT_LIMIT = 20_000
"""The newest decisions a report reads (a bound on one request's work)."""
READY_PATH = "/readyz"
_PUBLIC = public_paths(ArgoNotification) | {"/metrics", OPENAPI_PATH, READY_PATH}


class PeerAuth:
    """Bearer auth (kit) on the A2A routes only, with peer id -> tokens (the token names the peer); the
    webhook and decisions API check their own tokens, so a peer's token never approves and the
    approvals token never asks as a peer. The A2A HTTP+JSON routes take JSON bodies only (415)."""

    def __init__(self, app: ASGIApp, tokens: dict[str, list[str]]) -> None:
        self._app = app
        self._guarded = BearerAuth(RestMediaType(app, REST_PREFIX), tokens, public=_PUBLIC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_OWN_AUTH):
            await self._app(scope, receive, send)
        else:
            await self._guarded(scope, receive, send)


Resume = Callable[[str, Approval], Awaitable[Decision]]
"""Takes a human's answer for an event and returns the decision after it (DecisionRunner.resume)."""
Outcomes = Callable[[list[Decision]], Awaitable[list[Decision]]]
"""Fills each decision's `outcome` from the outcome store (agents.drift.outcome_store.OutcomeStore)."""
Report = Callable[[timedelta, str | None], Awaitable[AgreementReport]]
"""The agreement report over a period back from Driftwise's now, for one project or all (agents.drift.report);
raises ReportError when there is nothing to report."""
Ready = Callable[[], Awaitable[Readiness]]
"""Whether this replica can reach its state database now (agents.drift.readiness.StateProbe)."""
Wait = Callable[[str, float, bool], Awaitable[Decision | None]]
"""Waits up to the seconds given for an event's decision to be final, or (True) to have its verdict
(Admission.wait); returns it as it then stands."""


def _superseded(decision: Decision | None) -> Response | None:
    """409 for an answer to a decision a changed drift replaced: its approval was withdrawn."""
    if decision is None or decision.state != DecisionState.SUPERSEDED:
        return None
    return error(409, f"decision {decision.event.event_id} was superseded by event {decision.superseded_by}: "
                      "its approval was withdrawn; answer that decision instead",
                 superseded_by=decision.superseded_by)


def create_app(
    config: DriftConfig,
    store: EventStore,
    metrics: DriftMetrics,
    on_accepted: Callable[[Decision], Awaitable[None]],
    *,
    ask: Callable[[ArgoNotification], Awaitable[Decision | None]] | None = None,
    resume: Resume | None = None,
    wait: Wait | None = None,
    card: AgentCard | None = None,
    jwks: dict[str, Any] | None = None,
    signer: Signer | None = None,
    instrument: Callable[[Starlette], None] | None = None,
    outcomes: Outcomes | None = None,
    report: Report | None = None,
    ready: Ready | None = None,
) -> ASGIApp:
    approvers = accepted(config.approvals_token)
    trust = ProxyTrust(config.console.proxy)

    def unauthorized(request: Request) -> Response | None:
        """The refusal of a decisions/approvals API call: an identity header not from the proxy (403), or
        no approvals token (401); None when it may go on."""
        try:
            trust.identify(request)
        except IdentityRefused as exc:
            return error(exc.status, printable(str(exc), 400))
        header = request.headers.get("authorization")
        if not any([bearer_ok(header, t) for t in approvers]):  # every one compared: no early exit
            return error(401, "send Authorization: Bearer <drift.approvals_token>")
        return None

    webhook = webhook_endpoint(config, store, on_accepted)
    document = openapi_document()

    async def with_outcomes(decisions: list[Decision]) -> list[Decision]:
        return await outcomes(decisions) if outcomes is not None and decisions else decisions

    async def counted_webhook(request: Request) -> Response:
        response = await webhook(request)
        metrics.webhooks.labels(outcome=str(response.status_code)).inc()
        return response

    async def list_decisions(request: Request) -> Response:
        if (refused := unauthorized(request)) is not None:
            return refused
        state = request.query_params.get("state") or None
        if state is not None and state not in {s.value for s in DecisionState}:
            return error(400, f"state {printable(state)!r} is not one of {', '.join(s.value for s in DecisionState)}")
        found = await store.list(request.query_params.get("application") or None, state)
        return JSONResponse(DecisionList(decisions=await with_outcomes(found)).model_dump(mode="json"))

    async def get_decision(request: Request) -> Response:
        if (refused := unauthorized(request)) is not None:
            return refused
        event_id = request.path_params["event_id"]
        params = request.query_params
        until = params.get("until") or "final"
        if until not in UNTIL:
            return error(400, f"until={printable(until)!r}: use until=final (the default) or until=verdict")
        if params.get("wait"):
            try:
                wait_s = float(params["wait"])
            except ValueError:
                wait_s = -1.0
            if not 0 < wait_s <= MAX_WAIT_S:
                return error(400, f"wait={printable(params['wait'])!r}: give the seconds to wait for the decision, "
                                  f"a number above 0 and at most {MAX_WAIT_S:g}")
            if wait is None:
                return error(503, "this drift agent does not wait for decisions; poll without ?wait=")
            found = await wait(event_id, wait_s, until == "verdict")
        else:
            found = await store.get(event_id)
        if found is None:
            return error(404, f"no decision for event {printable(event_id)}")
        (shown,) = await with_outcomes([found])
        return JSONResponse(shown.model_dump(mode="json"))

    async def report_endpoint(request: Request) -> Response:
        if (refused := unauthorized(request)) is not None:
            return refused
        if report is None:
            return error(503, "this drift agent does not report")
        try:
            since = parse_since(request.query_params.get("since") or "7d")
        except ReportError as exc:
            return error(400, printable(str(exc), 400), field="since")
        try:
            found = await report(since, request.query_params.get("project") or None)
        except ReportError as exc:
            return error(404, printable(str(exc), 400))
        return JSONResponse(found.model_dump(mode="json"))

    def answer(decision: Literal["approve", "reject"]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            from agents.drift.runner import ApprovalConflict

            if (refused := unauthorized(request)) is not None:
                return refused
            if resume is None:
                return error(503, "this drift agent does not take approvals")
            try:
                body = await read_json_object(request, config.max_body_bytes,
                                              "an Approval {decision, action, approver, comment}", required=False)
            except BadRequest as exc:
                return error(exc.status, str(exc))
            body.setdefault("decision", decision)
            if "identity" in body:
                return error(422, "field `identity`: the drift agent records who answered from how the request was "
                                  "authenticated; leave it out", field="identity")
            try:
                approval = Approval.model_validate(body)
                identity = trust.identify(request) or asserted(approval.approver, "approvals_token", peer_of(request))
            except ValidationError as exc:
                return field_error(exc)
            except IdentityRefused as exc:
                return error(exc.status, printable(str(exc), 400))
            approval = approval.model_copy(update={"approver": identity.user, "identity": identity})
            if approval.decision != decision:
                return error(422, f"field `decision` is {approval.decision!r} on the /{decision} endpoint",
                             field="decision")
            event_id = request.path_params["event_id"]
            if (refused := _superseded(await store.get(event_id))) is not None:
                return refused
            try:
                result = await resume(event_id, approval)
            except ApprovalConflict as exc:
                if (refused := _superseded(await store.get(event_id))) is not None:
                    return refused  # superseded while the answer was on its way
                extra = {"allowed_actions": exc.allowed} if exc.allowed else {}
                return error(exc.status, printable(str(exc), 400), **extra)
            return JSONResponse(result.model_dump(mode="json"))

        return endpoint

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True, "agent": config.agent_id})

    async def readyz(_: Request) -> Response:
        if ready is None:  # never ready by default: a Service must not route to a replica nobody probes
            found = Readiness(ready=False, agent=config.agent_id, state="unknown",
                              problem="this drift agent was built without a readiness probe")
        else:
            found = await ready()
        return JSONResponse(found.model_dump(mode="json"), status_code=200 if found.ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        awaiting = DecisionState.AWAITING_APPROVAL.value
        metrics.pending_approvals.set(await store.count_state(awaiting))
        oldest = await store.oldest_received(awaiting)  # received_at is on the system clock, as is this
        metrics.oldest_pending_approval.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def jwks_endpoint(_: Request) -> Response:
        return JSONResponse(jwks or {"keys": []})

    async def openapi_endpoint(_: Request) -> Response:
        return JSONResponse(document)

    handlers: dict[str, Callable[[Request], Awaitable[Response]]] = {
        "webhook": counted_webhook, "list_decisions": list_decisions, "get_decision": get_decision,
        "approve": answer("approve"), "reject": answer("reject"), "report": report_endpoint,
    }
    routes: list[BaseRoute] = [Route(op.path, handlers[op.id], methods=[op.method]) for op in OPERATIONS]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route(READY_PATH, readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route(OPENAPI_PATH, openapi_endpoint, methods=["GET"]),
    ]
    # the approvals console: the proxy's identities, or its own sign-in (the approvals token); same approvals path
    shared_key = config.console.session_key.get_secret_value() if config.console.session_key else None
    routes.append(Mount(CONSOLE_PREFIX, app=console_app(ConsoleDeps(
        store=store, resume=resume, approvals_tokens=approvers, max_body_bytes=config.max_body_bytes,
        secure_cookie=any(url.lower().startswith("https://") for url in (config.public_url, config.console.public_url)
                          if url),
        trust=trust, approvers=Approvers(config.console.approvers),
        session_key=signing_key(shared_key, approvers)))))
    if card is not None and ask is not None and signer is not None:
        routes.extend(a2a_routes(card, ask, signer, jwks or {"keys": []}, config.base_url))
    else:
        routes.append(Route(JWKS_PATH, jwks_endpoint, methods=["GET"]))
    app = Starlette(routes=routes)
    if instrument is not None:
        instrument(app)
    return PeerAuth(app, {peer: accepted(tokens) for peer, tokens in config.peer_tokens.items()})


async def _every(interval_s: float, what: str, tick: Callable[[], Awaitable[None]]) -> None:
    """Run `tick` forever at a fixed interval; one failing tick is logged, never the end of the loop."""
    while True:
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:  # a background loop's last line of defence: log with context, keep ticking
            log.exception("%s tick failed", what)
        await asyncio.sleep(interval_s)


async def serve(config: DriftConfig) -> None:
    """Run the drift agent until stopped."""
    # Heavy, other-owned parts are imported here so that the app module stays importable on its own.
    from agents.drift.admission import Admission
    from agents.drift.agreement_gauges import AgreementGauges
    from agents.drift.approval_wait import ApprovalWait
    from agents.drift.argocd_client import ArgoCDClient, shared_client
    from agents.drift.audit_anchor import anchor_for
    from agents.drift.graph import compile_graph
    from agents.drift.leases import Fence, LeaseKeeper
    from agents.drift.notify import Notifier, WebhookSender
    from agents.drift.notify_message import console_link
    from agents.drift.outcome_tracker import OutcomeTracker, with_outcomes
    from agents.drift.readiness import probe_for
    from agents.drift.report import PromotionRule, build_report
    from agents.drift.reread import Rereader
    from agents.drift.retention import Retention
    from agents.drift.runner import DecisionRunner
    from agents.drift.state import open_state
    from agents.drift.wiring import build_deps
    from agents.kit.telemetry import setup_tracing
    from protocol.signing import public_jwks

    config.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = DriftMetrics()
    provider = setup_tracing(f"driftwise-{config.agent_id}", config.otlp_endpoint, config.service_namespace)
    async with AsyncExitStack() as stack:
        stack.callback(provider.shutdown)  # flushes the last spans
        http = await stack.enter_async_context(shared_client(config.argocd))
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.starlette import StarletteInstrumentor

        HTTPXClientInstrumentor.instrument_client(http)
        # the outbox beside the decisions (one file, or one PostgreSQL), so intent and decision share a transaction
        state = await stack.enter_async_context(open_state(config.state, config.db_path, config.checkpoint_path,
                                                           fence=Fence(config.replica_id)))
        leases = LeaseKeeper(state.leases, config.replica_id, config.lease_ttl_s,
                             on_count=metrics.leases_held.set)
        store, audit, acting, replay, saver = state.events, state.audit, state.acting, state.replay, state.checkpoints
        outcome_store = state.outcomes
        deps, pool = await build_deps(config, http, replay, acting)
        if pool is not None:
            stack.push_async_callback(pool.close)
        await deps.reasoner.start()
        stack.push_async_callback(deps.reasoner.aclose)
        await audit.anchor_with(anchor_for(config, deps.signer, http, metrics.audit_sink_failures.inc))
        graph = compile_graph(deps, saver)
        approval_wait = ApprovalWait(store, acting, audit, timedelta(hours=config.approval_timeout_h),
                                     notify=config.notify is not None, metrics=metrics)
        runner = DecisionRunner(config, graph, store, audit, deps.signer, deps.clock, metrics,
                                on_waiting=approval_wait.waiting, leases=leases)
        stack.push_async_callback(runner.close)
        applier = deps.applier
        assert applier is not None
        argocd = ArgoCDClient(http, config.argocd.url, _secret(config.argocd.token), config.argocd.timeout_s)
        # every new event passes the open-decision rule (join, supersede, unknown application) first
        admission = Admission(store, argocd, audit, runner.submit, runner.wait, jobs=acting,
                              wait_bound_s=config.decision_deadline_s + 5.0, leases=leases)
        stack.push_async_callback(admission.close)

        async def ask(notification: ArgoNotification) -> Decision | None:
            import uuid

            event = DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(notification),
                               received_at=datetime.now(UTC), notification=notification)
            decision, duplicate = await store.accept(event, datetime.now(UTC))
            if not duplicate:
                await admission.submit(decision)
            return await admission.wait(decision.event.event_id, config.decision_deadline_s + 2.0)

        async def run_resume(event_id: str, approval: Approval) -> Decision:
            return await runner.resume(event_id, approval, config.decision_deadline_s + 5.0)

        resume = admission.guarded(run_resume)  # an approval or a supersede of a decision, never both

        base_url = config.base_url
        card = build_card_for(config.agent_id, base_url, deps.signer.key)

        async def wait(event_id: str, timeout_s: float, until_verdict: bool) -> Decision | None:
            return await admission.wait(event_id, timeout_s, until_verdict)

        async def outcomes(decisions: list[Decision]) -> list[Decision]:
            return await with_outcomes(outcome_store, decisions)

        rule = PromotionRule(config.promotion_min_decisions, config.promotion_min_agreement,
                             config.promotion_quiet_days)

        async def report(since: timedelta, project: str | None) -> AgreementReport:
            decided = await outcomes(await store.list(limit=REPORT_LIMIT))
            return build_report(decided, await deps.clock.now(), since=since, project=project,
                                mode_for=config.mode_for, rule=rule)

        app = create_app(config, store, metrics, admission.submit, ask=ask, resume=resume, wait=wait, card=card,
                         jwks=public_jwks([deps.signer.key]), signer=deps.signer,
                         instrument=StarletteInstrumentor.instrument_app, outcomes=outcomes, report=report,
                         ready=probe_for(config.agent_id, config.state, store.db))
        # Before any thread resumes: a sync a crash left `requested` is confirmed from Argo CD, never re-sent.
        recovered = await applier.recover(await deps.clock.now())
        if recovered:
            log.info("resolved %d Argo CD write(s) a previous run left unconfirmed", recovered)
        resumed = await runner.take_over(admission.submit)
        if resumed:
            log.info("resumed %d undecided event(s)", resumed)
        adopted = await approval_wait.adopt(await deps.clock.now())
        if adopted:
            log.info("%d decision(s) waiting for a human from before drift.approval_timeout_h now expire in %g h",
                     adopted, config.approval_timeout_h)

        async def renew_leases() -> None:
            await leases.renew()

        async def take_over() -> None:
            await runner.take_over(admission.submit)

        rereader = Rereader(store, argocd, admission.submit, metrics)

        async def run_due() -> None:
            now = await deps.clock.now()
            for job, action in await applier.run_due(now):
                await runner.record_job(job, action)
            await approval_wait.run_due(now, rereader.reread)

        tracker = OutcomeTracker(store, outcome_store, audit, argocd, deps.clock.now,
                                 horizon=timedelta(hours=config.outcome_horizon_h),
                                 allow_ttl=timedelta(hours=config.allow_ttl_h), metrics=metrics)

        gauges = AgreementGauges(metrics, outcome_store, deps.clock.now)

        async def reread() -> None:
            await rereader.tick(await deps.clock.now())
            # after the re-read: a changed drift is decided anew, so its old one is superseded
            recorded = await tracker.tick()
            await gauges.tick(bool(recorded))

        retention = Retention(state, timedelta(days=config.state.retention_days))

        async def prune() -> None:
            await retention.prune(datetime.now(UTC))  # records are stamped on the system clock, not the sandbox's

        loops = [asyncio.create_task(_every(config.scheduler_interval_s, "scheduler", run_due), name="scheduler"),
                 asyncio.create_task(_every(config.reread_interval_s, "re-read", reread), name="reread"),
                 asyncio.create_task(_every(config.state.retention_interval_s, "retention", prune), name="retention"),
                 # renewal in its own loop: never queued behind a take-over's work
                 asyncio.create_task(_every(leases.interval_s, "lease renewal", renew_leases), name="lease-renewal"),
                 asyncio.create_task(_every(leases.interval_s, "take-over", take_over), name="take-over")]
        if config.notify is not None:
            notifier = Notifier(WebhookSender(config.notify), store, acting,
                                lambda event_id: console_link(config.console_url or base_url, event_id), metrics)
            stack.push_async_callback(notifier.aclose)

            async def notify() -> None:
                await notifier.tick(await deps.clock.now())

            # its own loop: a slow or failing receiver never holds up the scheduler's syncs and expiries
            loops.append(asyncio.create_task(_every(config.scheduler_interval_s, "notify", notify), name="notify"))
        for task in loops:
            stack.callback(task.cancel)
        server = uvicorn.Server(server_config(app, config))
        if config.console.public_url is None:  # said once start-up went well: a failure stays one line
            log.info("console.public_url is not set: Argo CD's Application annotation carries no link to the decision")
        log.info("drift agent serving on %s (state %s, replica %s)", base_url, state.backend, config.replica_id)
        # what start-up built lives for the whole process: keep it out of every full GC pass
        # (one took 123 ms in the middle of a decision)
        gc.freeze()
        await server.serve()


def server_config(app: ASGIApp, config: DriftConfig) -> uvicorn.Config:
    """How uvicorn serves the drift agent. proxy_headers off: the client address stays the TCP peer, which is
    what console.proxy.trusted_cidrs is checked against (uvicorn's default would take X-Forwarded-For from a
    loopback peer, so a sidecar proxy's forwarded client address would replace the proxy's own)."""
    return uvicorn.Config(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                          lifespan="off", proxy_headers=False)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
