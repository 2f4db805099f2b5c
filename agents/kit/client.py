"""Calling another agent over A2A with a2a-sdk's own client: one AnalysisRequest in, a SignedRecommendation out.

The caller verifies the JWS (protocol.signing.Verifier); this client checks shape and transport only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from a2a.client import A2ACardResolver, A2AClientError, A2AClientTimeoutError, ClientCallContext, ClientConfig
from a2a.client.client_factory import ClientFactory
from a2a.client.errors import AgentCardResolutionError
from a2a.helpers import new_message
from a2a.types import AgentCard, Part, Role, SendMessageRequest, Task, TaskState
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError
from pydantic import BaseModel, ValidationError

from agents.kit.errors import PeerAuthError, PeerError, PeerProtocolError, PeerTimeout, PeerUnreachable
from protocol.models import AnalysisRequest, Recommendation, SignedRecommendation
from protocol.signing import RequestBinding

JSON = "application/json"
JWT = "application/jwt"

__all__ = ["PeerClient"]
T = TypeVar("T")


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an a2a-sdk error: on the error itself or on the httpx error it wraps."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AgentCardResolutionError) and seen.status_code is not None:
            return seen.status_code
        if isinstance(seen, httpx.HTTPStatusError):
            return seen.response.status_code
        seen = seen.__cause__
    return None


def _transport_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError | OSError):
            return True
        seen = seen.__cause__
    return False


def _classify(url: str, exc: Exception) -> PeerError:
    text = str(exc)
    if isinstance(exc, A2AClientTimeoutError | httpx.TimeoutException | TimeoutError):
        return PeerTimeout(url, "no answer in time")
    status = _status_of(exc)
    if status in (401, 403):
        return PeerAuthError(url, f"credentials refused (HTTP {status}: {text[:200]})")
    if status is None and _transport_failure(exc):
        return PeerUnreachable(url, f"unreachable ({text[:200]})")
    if status is not None:
        return PeerProtocolError(url, f"HTTP {status}: {text[:300]}")
    return PeerProtocolError(url, f"{type(exc).__name__}: {text[:300]}")


class PeerClient:
    """Asks peer agents for analyses; one instance per process, over the process's shared httpx client."""

    def __init__(self, http: httpx.AsyncClient, *, binding: str = TransportProtocol.JSONRPC) -> None:
        self._http = http
        self._factory = ClientFactory(ClientConfig(
            httpx_client=http, streaming=False, supported_protocol_bindings=[binding],
        ))
        self._cards: dict[str, AgentCard] = {}

    async def card(
        self, url: str, timeout_s: float, signature_verifier: Callable[[AgentCard], None] | None = None,
    ) -> AgentCard:
        """The agent's card (kept once read); with `signature_verifier` (agents.kit.card.card_verifier) its
        signature must verify, else a2a-sdk's error passes through."""
        cached = self._cards.get(url)
        if cached is None:
            resolver = A2ACardResolver(self._http, url)
            cached = await resolver.get_agent_card(http_kwargs={"timeout": timeout_s},
                                                   signature_verifier=signature_verifier)
            self._cards[url] = cached
        elif signature_verifier is not None:  # kept from a read that did not ask for verification
            signature_verifier(cached)
        return cached

    async def analyze(self, url: str, request: AnalysisRequest, token: str, timeout_s: float) -> SignedRecommendation:
        """Send `request` to the agent at `url` (bearer `token`); raise a PeerError subclass on any failure."""
        return await self._bounded(url, timeout_s, self._analyze(url, request, token, timeout_s))

    async def answer(
        self, url: str, request: AnalysisRequest, token: str, timeout_s: float,
    ) -> tuple[SignedRecommendation, RequestBinding]:
        """As analyze(), with the request the answer must bind (the message sent, the task it was answered in)."""
        async def call() -> tuple[SignedRecommendation, RequestBinding]:
            task, message_id = await self._send(url, request, token, timeout_s)
            return _signed_from_task(url, task), RequestBinding(message_id=message_id, task_id=task.id)

        return await self._bounded(url, timeout_s, call())

    async def send(self, url: str, payload: BaseModel, token: str, timeout_s: float) -> tuple[Task, str]:
        """Send `payload` as the message's application/json text part; the task the peer answered with and the
        id of the message sent (which a signed answer binds); a PeerError subclass on any failure."""
        return await self._bounded(url, timeout_s, self._send(url, payload, token, timeout_s))

    async def _bounded(self, url: str, timeout_s: float, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(timeout_s):
                return await call
        except PeerError:
            raise
        except TimeoutError:
            raise PeerTimeout(url, f"no answer within {timeout_s:.2f}s") from None
        except (A2AError, httpx.HTTPError, OSError, ValueError) as exc:
            self._cards.pop(url, None)
            raise _classify(url, exc) from exc

    async def _analyze(self, url: str, request: AnalysisRequest, token: str, timeout_s: float) -> SignedRecommendation:
        task, _ = await self._send(url, request, token, timeout_s)
        return _signed_from_task(url, task)

    async def _send(self, url: str, payload: BaseModel, token: str, timeout_s: float) -> tuple[Task, str]:
        card = await self.card(url, timeout_s)
        client = self._factory.create(card)
        message = new_message([Part(text=payload.model_dump_json(), media_type=JSON)], role=Role.ROLE_USER)
        context = ClientCallContext(timeout=timeout_s, service_parameters={"Authorization": f"Bearer {token}"})
        task: Task | None = None
        try:
            async for event in client.send_message(SendMessageRequest(message=message), context=context):
                if event.HasField("task"):
                    task = event.task
                elif event.HasField("message"):
                    raise PeerProtocolError(url, "answered with a message, not a task")
        except A2AClientError:
            raise
        except A2AError as exc:  # a JSON-RPC error from the peer, e.g. -32602 invalid params
            raise PeerProtocolError(url, f"{type(exc).__name__}: {exc.message}") from exc
        if task is None:
            raise PeerProtocolError(url, "no task in the answer")
        return task, message.message_id


def _signed_from_task(url: str, task: Task) -> SignedRecommendation:
    if task.status.state != TaskState.TASK_STATE_COMPLETED:
        detail = " ".join(p.text for p in task.status.message.parts if p.HasField("text"))
        raise PeerProtocolError(url, f"task ended {TaskState.Name(task.status.state)}: {detail or 'no detail'}")
    jws = rec_json = None
    for artifact in task.artifacts:
        for part in artifact.parts:
            if part.media_type == JWT and part.HasField("text"):
                jws = part.text
            elif part.media_type == JSON and part.HasField("text"):
                rec_json = part.text
    if not jws or not rec_json:
        raise PeerProtocolError(url, "the task has no application/jwt + application/json recommendation parts")
    try:
        rec = Recommendation.model_validate(json.loads(rec_json))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise PeerProtocolError(url, f"the recommendation part is not a valid Recommendation: {exc}") from exc
    return SignedRecommendation(jws=jws, recommendation=rec)
