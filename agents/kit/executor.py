"""The A2A side of a specialist: validate, run analyze() under the deadline, sign, answer as a completed Task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

from a2a.helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.default_request_handler import TERMINAL_TASK_STATES
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Part, SendMessageRequest, Task, TaskState
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError
from a2a.utils.input_mode_validator import validate_input_modes

from agents.kit.auth import OWN_AGENTS
from agents.kit.card import JSON, JWT
from agents.kit.deadline import analysis_scope, apply_degradations
from agents.kit.errors import InvalidMessage
from agents.kit.runtime import Runtime
from agents.kit.specialist import Specialist
from agents.kit.telemetry import tracer
from agents.kit.validation import parse_request
from protocol.models import Action, AnalysisRequest, Recommendation
from protocol.signing import RequestBinding

log = logging.getLogger(__name__)
ARTIFACT_NAME = "recommendation"


async def run_analysis(specialist: Specialist, runtime: Runtime, request: AnalysisRequest) -> Recommendation:
    """analyze() under the kit's deadline; failed dependencies lower confidence; a late analysis escalates."""
    deadline = runtime.config.deadline_s
    with tracer().start_as_current_span(
        "specialist.analyze", attributes={"driftwise.agent": specialist.agent, "driftwise.event_id": request.event_id},
    ) as span, analysis_scope(deadline) as scope:
        try:
            async with asyncio.timeout(deadline):
                rec = await specialist.analyze(request)
        except TimeoutError:
            rec = specialist.recommend(
                request, Action.ESCALATE, 0.3,
                f"{specialist.agent} could not finish its analysis within its {deadline:.1f}s deadline; "
                "a human should look at this drift.",
            )
        rec = apply_degradations(rec, scope.degradations)
        span.set_attribute("driftwise.kind", rec.kind)
        span.set_attribute("driftwise.action", rec.action.value if rec.action else "")
        span.set_attribute("driftwise.confidence", rec.confidence)
        span.set_attribute("driftwise.degraded", len(scope.degradations))
        return rec


def addressee(principal: str, request: AnalysisRequest) -> str:
    """Whom an answer is addressed to (its `aud`): the peer the caller's token names.

    Driftwise's own agents share the role token (OWN_AGENTS) and say in `requester` which of them asks."""
    return request.requester if principal == OWN_AGENTS else principal


def check_requester(principal: str, request: AnalysisRequest) -> None:
    """A peer's request names the peer its token names: an answer cannot be asked for on another's behalf."""
    if principal != OWN_AGENTS and request.requester != principal:
        raise InvalidParamsError(message=f"requester {request.requester!r} is not the peer your token names "
                                         f"({principal!r}): set requester to {principal!r}")


class SpecialistExecutor(AgentExecutor):
    def __init__(self, specialist: Specialist, runtime: Runtime) -> None:
        self.specialist = specialist
        self.runtime = runtime

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        # The handler validated the message already; parse again here (cheap) to get the model.
        request = parse_request(context.message)
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)  # the first event of a new task must be the Task itself
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.update_status(TaskState.TASK_STATE_WORKING)
        audience = [addressee(context.call_context.user.user_name, request)]
        answers = RequestBinding(message_id=context.message.message_id, task_id=task.id) if context.message else None
        try:
            rec = await run_analysis(self.specialist, self.runtime, request)
            signed = self.runtime.signer.sign_recommendation(rec, audience=audience, answers=answers)
        except Exception as exc:  # the process edge of one task: fail it with a named cause, keep serving
            log.exception("analysis of event %s failed", request.event_id)
            await updater.update_status(
                TaskState.TASK_STATE_FAILED,
                message=new_text_message(f"{self.specialist.agent} failed: {type(exc).__name__}: {exc}"),
            )
            return
        await updater.add_artifact(
            [Part(text=signed.jws, media_type=JWT), Part(text=rec.model_dump_json(), media_type=JSON)],
            name=ARTIFACT_NAME, last_chunk=True,
        )
        await updater.update_status(TaskState.TASK_STATE_COMPLETED, timestamp=datetime.now(UTC).isoformat())

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.current_task is not None:
            updater = TaskUpdater(event_queue, context.current_task.id, context.current_task.context_id)
            await updater.update_status(TaskState.TASK_STATE_CANCELED)


class ValidatingRequestHandler(DefaultRequestHandler):
    """Rejects a message whose payload is not what the skill takes (by default an AnalysisRequest) before any
    task exists (JSON-RPC -32602)."""

    def __init__(self, *args: Any, parse: Callable[[Message | None], object] = parse_request, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parse = parse

    async def _precheck(self, params: SendMessageRequest, context: ServerCallContext) -> None:
        # Protocol errors come before payload errors (A2A 1.0 §3.1.1, §3.4.2): an undeclared media
        # type, an unknown task, a finished task; only then is the payload checked.
        if params.HasField("message"):
            validate_input_modes(params.message, self._agent_card)
            if params.message.task_id:
                task = await self.task_store.get(params.message.task_id, context)
                if task is None:
                    raise TaskNotFoundError(message=f"task {params.message.task_id} does not exist")
                if task.status.state in TERMINAL_TASK_STATES:
                    raise UnsupportedOperationError(message=f"task {task.id} is already finished; start a new task")
        try:
            parsed = self._parse(params.message if params.HasField("message") else None)
        except InvalidMessage as exc:
            raise InvalidParamsError(message=str(exc)) from None
        if isinstance(parsed, AnalysisRequest):
            check_requester(context.user.user_name, parsed)

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        await self._precheck(params, context)
        return await super().on_message_send(params, context)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator:
        await self._precheck(params, context)
        async for event in super().on_message_send_stream(params, context):
            yield event
