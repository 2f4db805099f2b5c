"""The drift agent's A2A face: a signed card with one skill, "analyze-drift", on the kit's server machinery.

A peer sends an ArgoNotification (application/json text part) naming an application; the drift
agent runs (or joins) the decision for it and answers with a completed Task whose artifact
`verdict` holds the signed verdict (application/jwt) and the Verdict (application/json).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, ClassVar, cast

from a2a.helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCard, Message, Part, SendMessageRequest, Task, TaskState
from a2a.utils.errors import InvalidParamsError
from joserfc.jwk import OKPKey
from pydantic import ValidationError
from starlette.routing import BaseRoute

from agents.kit.card import JSON, JSONRPC_PATH, JWT, REST_PREFIX, build_card, sign_card
from agents.kit.specialist import Skill, Specialist
from protocol.models import ArgoNotification, Decision

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


class InvalidAsk(Exception):
    pass


def parse_notification(message: Message | None) -> ArgoNotification:
    if message is None:
        raise InvalidAsk("no message: send an ArgoNotification as an application/json text part")
    texts = [p for p in message.parts if p.HasField("text")]
    parts = [p for p in texts if p.media_type == JSON] or [p for p in texts if not p.media_type]
    if not parts:
        raise InvalidAsk("the message holds no application/json text part with an ArgoNotification")
    try:
        payload: Any = json.loads(parts[0].text)
    except json.JSONDecodeError as exc:
        raise InvalidAsk(f"the application/json part is not JSON ({exc.msg})") from None
    try:
        return ArgoNotification.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise InvalidAsk(f"not a valid ArgoNotification: {field}: {err['msg']}") from None


Ask = Callable[[ArgoNotification], Awaitable[Decision | None]]


class DriftExecutor(AgentExecutor):
    def __init__(self, ask: Ask) -> None:
        self._ask = ask

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
            await updater.update_status(
                TaskState.TASK_STATE_FAILED,
                message=new_text_message(f"no verdict for {notification.app} yet; "
                                         "follow it with GET /v1/decisions?application=..."),
            )
            return
        await updater.add_artifact(
            [Part(text=decision.verdict.jws, media_type=JWT),
             Part(text=decision.verdict.verdict.model_dump_json(), media_type=JSON)],
            name=ARTIFACT_NAME, last_chunk=True,
        )
        await updater.update_status(TaskState.TASK_STATE_COMPLETED)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.current_task is not None:
            updater = TaskUpdater(event_queue, context.current_task.id, context.current_task.context_id)
            await updater.update_status(TaskState.TASK_STATE_CANCELED)


def _check(params: SendMessageRequest) -> None:
    try:
        parse_notification(params.message if params.HasField("message") else None)
    except InvalidAsk as exc:
        raise InvalidParamsError(message=str(exc)) from None


class _Handler(DefaultRequestHandler):
    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        _check(params)
        return await super().on_message_send(params, context)

    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext) -> AsyncGenerator:
        _check(params)
        async for event in super().on_message_send_stream(params, context):
            yield event


def build_card_for(agent: str, base_url: str, key: OKPKey) -> AgentCard:
    return sign_card(build_card(cast(type[Specialist], _DriftCard), agent, base_url), key, base_url)


def a2a_routes(card: AgentCard, ask: Ask) -> list[BaseRoute]:
    handler = _Handler(agent_executor=DriftExecutor(ask), task_store=InMemoryTaskStore(), agent_card=card)
    return [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH),
        *create_rest_routes(handler, path_prefix=REST_PREFIX),
    ]
