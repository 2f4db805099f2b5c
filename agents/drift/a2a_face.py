"""The drift agent's A2A face: a signed card with one skill, "analyze-drift", on the kit's server machinery.

A peer sends an ArgoNotification (application/json text part) naming an application; the drift
agent runs the decision for it, or joins the open one of the same application and revision (the
same rule as the webhook: agents.drift.open_rule), and answers with a completed Task whose artifact
`verdict` holds the verdict signed for the asker (application/jwt: `aud` = the peer its token
names, `message_id`/`task_id` = the request it answers) and the Verdict (application/json), its
metadata the decision's `event_id`. A decision that ends without a verdict (an application Argo CD
does not know) fails the task with a message naming its state and event id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from a2a.helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCard, Message, Part, TaskState
from joserfc.jwk import OKPKey
from starlette.routing import BaseRoute

from agents.kit.card import JSON, JSONRPC_PATH, JWT, REST_PREFIX, build_card, sign_card
from agents.kit.executor import ValidatingRequestHandler
from agents.kit.published import published_routes
from agents.kit.specialist import Skill, Specialist
from agents.kit.validation import parse_model
from protocol.models import ArgoNotification, Decision
from protocol.signing import RequestBinding, Signer

log = logging.getLogger(__name__)
ARTIFACT_NAME = "verdict"
SKILL_ID = "analyze-drift"


class _DriftCard:
    """The card's content (build_card reads these class attributes, as from a Specialist class)."""

    description: ClassVar[str] = (
        "Decides what to do about an Argo CD application's drift: gathers live context over MCP, asks "
        "specialist agents, reasons, signs, and clamps the result with OPA policy."
    )
    version: ClassVar[str] = "0.1.0"
    skills: ClassVar[tuple[Skill, ...]] = (
        Skill(
            id=SKILL_ID,
            name="Analyze drift",
            description="Given an application (ArgoNotification JSON), returns the signed, guarded verdict "
            "(allow | defer | enforce | escalate) with its reasons.",
            tags=("drift", "argocd", "gitops", "verdict"),
            examples=('{"app": "payments-api", "project": "prod"}',),
        ),
    )


def parse_notification(message: Message | None) -> ArgoNotification:
    return parse_model(message, ArgoNotification)


Ask = Callable[[ArgoNotification], Awaitable[Decision | None]]


class DriftExecutor(AgentExecutor):
    def __init__(self, ask: Ask, signer: Signer) -> None:
        self._ask = ask
        self._signer = signer

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        notification = parse_notification(context.message)
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.update_status(TaskState.TASK_STATE_WORKING)
        try:
            decision = await self._ask(notification)
        except Exception as exc:  # one task's edge: fail it with a named cause, keep serving
            log.exception("analyze-drift for %s failed", notification.app)
            await updater.update_status(
                TaskState.TASK_STATE_FAILED, message=new_text_message(f"drift failed: {type(exc).__name__}: {exc}")
            )
            return
        if decision is None or decision.verdict is None:
            await updater.update_status(TaskState.TASK_STATE_FAILED, message=new_text_message(_no_verdict(
                notification, decision)))
            return
        # The decision's own token is addressed to the drift agent; the asker gets one addressed to it.
        peer = context.call_context.user.user_name
        answers = RequestBinding(message_id=context.message.message_id, task_id=task.id) if context.message else None
        signed = self._signer.sign_verdict(decision.verdict.verdict, [peer], answers)
        await updater.add_artifact(
            [Part(text=signed.jws, media_type=JWT),
             Part(text=decision.verdict.verdict.model_dump_json(), media_type=JSON)],
            name=ARTIFACT_NAME, last_chunk=True, metadata={"event_id": decision.event.event_id},
        )
        await updater.update_status(TaskState.TASK_STATE_COMPLETED)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.current_task is not None:
            updater = TaskUpdater(event_queue, context.current_task.id, context.current_task.context_id)
            await updater.update_status(TaskState.TASK_STATE_CANCELED)


def _no_verdict(notification: ArgoNotification, decision: Decision | None) -> str:
    if decision is None:
        return f"no decision for {notification.app}"
    event_id = decision.event.event_id
    if decision.final:
        reason = decision.error or "no verdict"
        return f"decision {event_id} for {notification.app} ended {decision.state.value}: {reason}"
    return (f"no verdict for {notification.app} yet (decision {event_id} is {decision.state.value}); "
            f"follow it with GET /v1/decisions/{event_id}")


def build_card_for(agent: str, base_url: str, key: OKPKey) -> AgentCard:
    card = build_card(cast(type[Specialist], _DriftCard), agent, base_url, request_model=ArgoNotification)
    return sign_card(card, key, base_url)


def a2a_routes(card: AgentCard, ask: Ask, signer: Signer, jwks: dict[str, Any], base_url: str) -> list[BaseRoute]:
    """The face's card, JWKS and request schema (public, cacheable) and its two A2A bindings."""
    handler = ValidatingRequestHandler(agent_executor=DriftExecutor(ask, signer), task_store=InMemoryTaskStore(),
                                       agent_card=card, parse=parse_notification)
    return [
        *published_routes(card, jwks, ArgoNotification, base_url),
        *create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH),
        *create_rest_routes(handler, path_prefix=REST_PREFIX),
    ]
