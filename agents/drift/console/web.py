"""The approvals console's routes, mounted by the drift agent at /console (same process and port).

Who is answering: with `console.proxy.trusted_cidrs` set, the authenticating proxy's identity headers
(agents/drift/identity.py), and the console's own sign-in is off; without, the sign-in form (the approvals
token and a name). A request carrying an identity header from an address that is not the proxy's is
refused with a page saying so. Who may answer a project is agents/drift/approvers.py's rule.

Server-rendered Jinja2 templates (autoescape on, StrictUndefined) with htmx 2 for the one live part:
the queue's rows are re-fetched every QUEUE_POLL_S seconds. Forms are plain HTML POSTs (they work
without JavaScript and with the keyboard alone), each carrying the session's CSRF token. Every
response carries a strict Content-Security-Policy: scripts and styles only from /console/static,
no inline script, no eval, no frames, forms only to this origin.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.drift.approvers import Approvers
from agents.drift.config import CONSOLE_PATH
from agents.drift.console import session
from agents.drift.console.views import decision_view, queue_item, row
from agents.drift.identity import IdentityRefused, ProxyTrust, asserted, peer_of
from agents.drift.intake import BadRequest, printable, read_limited
from agents.drift.store import Cursor, DecisionFilter, EventStore
from protocol.models import Action, Approval, Decision, DecisionState, Identity

log = logging.getLogger(__name__)

PREFIX = CONSOLE_PATH
QUEUE_POLL_S = 2
QUEUE_PAGE = 50
"""Decisions per queue page: each is read whole (its JSON document), so a page is bounded, never the queue."""
_HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]
_FORM = "application/x-www-form-urlencoded"

Resume = Callable[[str, Approval], Awaitable[Decision]]


@dataclass(frozen=True)
class ConsoleDeps:
    """What the console needs from the drift agent: its store, the approvals path, the tokens it accepts,
    whose identity headers it believes, who may answer which project, the key its sessions are signed with."""

    store: EventStore
    resume: Resume | None
    approvals_tokens: list[str]
    secure_cookie: bool
    max_body_bytes: int
    trust: ProxyTrust
    approvers: Approvers
    session_key: str
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class SecurityHeaders:
    """Adds the CSP and its companions to every console response (pages, fragments, static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *_HEADERS]
            await send(message)

        await self._app(scope, receive, with_headers if scope["type"] == "http" else send)


def _safe_next(target: str | None) -> str:
    """Where to go after the login: a console path only (never another site, never `//host`)."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


def console_app(deps: ConsoleDeps) -> ASGIApp:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)

    def page(request: Request, template: str, status: int = 200, who: Identity | None = None,
             **values: object) -> HTMLResponse:
        html = env.get_template(template).render(
            prefix=PREFIX, csrf_field=session.CSRF_FIELD, csrf=session.csrf_token(request),
            who=who, poll_s=QUEUE_POLL_S, **values)
        return HTMLResponse(html, status_code=status)

    def message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
        return page(request, "message.html", status, title=title, text=text)

    def refused(request: Request, exc: IdentityRefused) -> HTMLResponse:
        log.warning("console: %s %s from %s refused: %s", request.method, request.url.path, peer_of(request), exc)
        return message(request, exc.status, "Refused: this identity is not believed", str(exc))

    def who(request: Request) -> Identity | Response:
        """The identity answering this request, or the page to answer instead (the login, a refusal)."""
        try:
            identity = deps.trust.identify(request)
        except IdentityRefused as exc:
            return refused(request, exc)
        if identity is not None:
            return identity
        peer = peer_of(request)
        if deps.trust.enabled:
            if deps.trust.trusts(peer):
                return refused(request, IdentityRefused(
                    f"The authenticating proxy sent no {deps.trust.user_header}: pass the signed-in user "
                    "(oauth2-proxy: --pass-user-headers or --set-xauthrequest).", 401))
            return refused(request, IdentityRefused(
                f"This console takes identities from its authenticating proxy (console.proxy.trusted_cidrs), and "
                f"{peer or 'an unknown address'} is not it: open the console at its public address."))
        name = session.approver(request)
        return to_login(request) if name is None else asserted(name, "console_sign_in", peer)

    def gated(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Every console route: an identity header from anywhere but the proxy ends the request here."""

        async def checked(request: Request) -> Response:
            try:
                deps.trust.identify(request)
            except IdentityRefused as exc:
                return refused(request, exc)
            return await endpoint(request)

        return checked

    def to_login(request: Request) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{PREFIX}/login?next={quote(here)}"
        if request.headers.get("hx-request"):  # htmx follows this header instead of swapping a login page in
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def form(request: Request) -> dict[str, str]:
        body = await read_limited(request, deps.max_body_bytes)
        if body and request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
            raise BadRequest(415, f"send the form as {_FORM}")
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(400, "the form is not valid URL-encoded UTF-8") from exc

    async def read_form(request: Request) -> dict[str, str] | Response:
        """The POSTed form once its CSRF token matches the session's; otherwise the refusal page."""
        try:
            fields = await form(request)
        except BadRequest as exc:
            return message(request, exc.status, "Refused", str(exc))
        if not session.csrf_ok(request, fields.get(session.CSRF_FIELD)):
            return message(request, 403, "Refused: the form's CSRF token is missing or stale",
                           "Reload the page and send the form again.")
        return fields

    def sign_in_off(request: Request) -> Response:
        """With a proxy, the proxy signs people in: the approvals-token form is off."""
        identity = who(request)
        if isinstance(identity, Response):
            return identity
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)

    async def login_form(request: Request) -> Response:
        if deps.trust.enabled:
            return sign_in_off(request)
        return page(request, "login.html", next=_safe_next(request.query_params.get("next")), error=None)

    async def login(request: Request) -> Response:
        if deps.trust.enabled:
            return message(request, 403, "Sign in through the authenticating proxy",
                           "This console's own sign-in is off: console.proxy.trusted_cidrs names the "
                           "authenticating proxy, which signs people in.")
        fields = await read_form(request)
        if isinstance(fields, Response):
            return fields
        target = _safe_next(fields.get("next"))
        try:
            given = session.Login.model_validate(fields)
        except ValidationError as exc:
            bad = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors()}))
            return page(request, "login.html", 400, next=target,
                        error=f"Fill in {bad}: the approvals token (drift.approvals_token) and your name as the "
                              "audit should record it (printable characters, at most 200).")
        if not session.token_ok(given.token.get_secret_value(), deps.approvals_tokens):
            log.warning("console login refused for approver %r: wrong token", printable(given.approver, 200))
            return page(request, "login.html", 401, next=target,
                        error="That is not the approvals token (drift.approvals_token).")
        session.sign_in(request, given.approver)
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        fields = await read_form(request)
        if isinstance(fields, Response):
            return fields
        session.sign_out(request)
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    def queue(template: str) -> Callable[[Request], Awaitable[Response]]:
        """The queue page, or (`_queue_rows.html`) the part of it htmx polls: oldest first, a page at a time
        from the cursor `after_at`/`after_id` (the last one of the page before)."""

        async def endpoint(request: Request) -> Response:
            identity = who(request)
            if isinstance(identity, Response):
                return identity
            params = request.query_params
            try:
                after = (Cursor(received_at=params["after_at"], event_id=params["after_id"])
                         if "after_at" in params or "after_id" in params else None)
            except (KeyError, ValidationError):
                return message(request, 400, "Bad page", "Check after_at and after_id: page with the Next link.")
            now = deps.now()
            found = await deps.store.awaiting(QUEUE_PAGE + 1, after)  # one more: is there a next page?
            shown = found[:QUEUE_PAGE]
            total = await deps.store.count_state(DecisionState.AWAITING_APPROVAL.value)
            here = f"?{urlencode({'after_at': params['after_at'], 'after_id': params['after_id']})}" if after else ""
            later = (f"{PREFIX}/?" + urlencode({"after_at": shown[-1].event.received_at.isoformat(),
                                                "after_id": shown[-1].event.event_id})
                     if len(found) > QUEUE_PAGE else None)
            return page(request, template, who=identity, items=[queue_item(d, now) for d in shown], total=total,
                        here=here, later=later, paged=after is not None)

        return endpoint

    async def recent(request: Request) -> Response:
        identity = who(request)
        if isinstance(identity, Response):
            return identity
        params = {k: v for k, v in request.query_params.items() if v}
        try:
            before = (Cursor(received_at=params.pop("before_at"), event_id=params.pop("before_id"))
                      if "before_at" in params or "before_id" in params else None)
            where = DecisionFilter.model_validate({**params, "before": before})
        except (KeyError, ValidationError) as exc:
            fields = (", ".join(sorted({str(e["loc"][0]) for e in exc.errors()})) if isinstance(exc, ValidationError)
                      else "before_at and before_id")
            return message(request, 400, "Bad filter", f"Check {fields}: choose a listed action, mode and state, "
                                                       "a project name, and page with the Older link.")
        found = await deps.store.page(where)
        older = None
        if found.more and found.decisions:
            last = found.decisions[-1]
            keep = {k: v for k, v in params.items() if k in {"project", "action", "mode", "state", "limit"}}
            older = f"{PREFIX}/decisions?" + urlencode({**keep, "before_at": last.event.received_at.isoformat(),
                                                        "before_id": last.event.event_id})
        return page(request, "recent.html", who=identity, rows=[row(d) for d in found.decisions], where=where,
                    older=older, actions=[a.value for a in Action], states=[s.value for s in DecisionState],
                    modes=["shadow", "advisory", "autonomous"], paged=where.before is not None)

    async def decision_page(request: Request, identity: Identity, status: int = 200, notice: str | None = None,
                            error: str | None = None) -> Response:
        event_id = request.path_params["event_id"]
        found = await deps.store.get(event_id)
        if found is None:
            return message(request, 404, "No such decision", f"No decision for event {printable(event_id)}.")
        answered = request.query_params.get("answered")
        if notice is None and answered in {"approve", "reject"}:
            notice = f"Your {answered} was recorded."
        return page(request, "decision.html", status, who=identity, d=decision_view(found), notice=notice,
                    error=error, not_yours=deps.approvers.refusal(identity, found.event.notification.project))

    async def show_decision(request: Request) -> Response:
        identity = who(request)
        if isinstance(identity, Response):
            return identity
        return await decision_page(request, identity)

    def answer(kind: Literal["approve", "reject"]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            from agents.drift.runner import ApprovalConflict

            identity = who(request)
            if isinstance(identity, Response):
                return identity
            fields = await read_form(request)
            if isinstance(fields, Response):
                return fields
            if deps.resume is None:
                return message(request, 503, "Approvals are off", "This drift agent does not take approvals.")
            reason = fields.get("reason", "").strip()
            if kind == "reject" and not reason:
                return await decision_page(request, identity, 422,
                                           error="Give a reason to reject: the audit records it.")
            try:
                action = Action(fields["action"]) if kind == "approve" and fields.get("action") else None
                approval = Approval(decision=kind, action=action, approver=identity.user, comment=reason,
                                    identity=identity)
            except (ValueError, ValidationError):
                return await decision_page(request, identity, 422, error="Choose one of the allowed actions, and "
                                                                         "keep the reason under 4,000 characters.")
            event_id = request.path_params["event_id"]
            current = await deps.store.get(event_id)
            if current is None:
                return message(request, 404, "No such decision", f"No decision for event {printable(event_id)}.")
            if current.state != DecisionState.AWAITING_APPROVAL:
                return await decision_page(request, identity, 409, error=_elsewhere(current))
            if (refusal := deps.approvers.refusal(identity, current.event.notification.project)) is not None:
                return await decision_page(request, identity, 403, error=refusal)  # the runner would refuse it too
            try:
                await deps.resume(event_id, approval)
            except ApprovalConflict as exc:
                after = await deps.store.get(event_id)
                text = (_elsewhere(after) if after is not None and after.state != DecisionState.AWAITING_APPROVAL
                        else printable(str(exc), 400))
                return await decision_page(request, identity, exc.status, error=text)
            log.info("console: %s of %s by %r (%s)", kind, event_id, identity.user, identity.via)
            return RedirectResponse(f"{PREFIX}/decisions/{quote(event_id)}?answered={kind}", status_code=303)

        return endpoint

    routes: list[Route | Mount] = [Route(path, gated(endpoint), methods=[method]) for path, endpoint, method in (
        ("/", queue("queue.html"), "GET"),
        ("/queue", queue("_queue_rows.html"), "GET"),
        ("/decisions", recent, "GET"),
        ("/decisions/{event_id}", show_decision, "GET"),
        ("/decisions/{event_id}/approve", answer("approve"), "POST"),
        ("/decisions/{event_id}/reject", answer("reject"), "POST"),
        ("/login", login_form, "GET"),
        ("/login", login, "POST"),
        ("/logout", logout, "POST"),
    )]
    routes.append(Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(
        SessionMiddleware, secret_key=deps.session_key, session_cookie=session.SESSION_COOKIE,
        max_age=session.SESSION_MAX_AGE_S, path=PREFIX, same_site="strict", https_only=deps.secure_cookie)])
    return SecurityHeaders(app)


def _elsewhere(decision: Decision) -> str:
    """What happened to a decision someone else answered (CLI, API, another tab) or a changed drift replaced."""
    if decision.state == DecisionState.SUPERSEDED:
        return (f"Nothing was done: this decision was superseded by {decision.superseded_by} (the drift changed); "
                "answer that one instead.")
    if decision.state == DecisionState.EXPIRED:
        return ("Nothing was done: nobody answered this decision in time (drift.approval_timeout_h), so it expired; "
                "if the drift persists it is decided again as a new event: answer that one.")
    who = (f" by {decision.approval.approver} ({decision.approval.decision}"
           + (f", {decision.approval.action.value}" if decision.approval.action else "") + ")"
           if decision.approval else "")
    return f"Nothing was done: this decision was already answered elsewhere{who}; it is now {decision.state.value}."
