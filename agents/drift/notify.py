"""Messages where people are: a decision waiting for a human is posted to `notify.webhook_url`.

Each message is a durable job (agents.drift.acting.store, kinds NOTIFY_JOBS) that agents.drift.approval_wait
schedules before the decision is seen waiting: `notify_approval` at once, `remind_approval` at half the
wait. This notifier runs them on its own loop, so a slow or failing receiver never holds up a decision,
a deferred sync or an expiry. Delivery is at least once: a message is marked sent only after the receiver
answered 2xx, so a crash in between sends it again after the restart (the receiver may show it twice).
One delivery is bounded: at most `max_attempts` POSTs, `backoff_s` doubling between them (or the
receiver's Retry-After), each POST within `timeout_s`, all within `deadline_s`; a message still not taken
then is given up (job `failed`, logged without the URL, counted in driftwise_notifications). A 4xx other
than 408/429 is a refusal (a revoked or mistyped webhook): given up at once, retrying would not help.
The message is built when it is sent, from the decision as it is then: one answered (or expired,
superseded) meanwhile is not announced; one still being recorded is left for the next tick.

The URL is a secret (Slack's carries its token in the path): it is sent through an httpx transport of
the notifier's own, not the drift agent's shared client, whose tracing (span attribute `url.full`) and
request log (the `httpx` logger) would both record it; no log line or error here carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from agents.drift.acting.store import ActingStore, Job, JobKind
from agents.drift.approval_wait import WaitPayload
from agents.drift.config import NotifyConfig
from agents.drift.metrics import DriftMetrics
from agents.drift.notify_message import MessageKind, WebhookMessage, approval_message
from agents.drift.open_rule import in_flight
from agents.drift.store import EventStore
from protocol.models import DecisionState

log = logging.getLogger(__name__)

NOTIFY_JOBS: tuple[JobKind, ...] = ("notify_approval", "remind_approval")
MESSAGE_OF: dict[str, MessageKind] = {"notify_approval": "approval_needed", "remind_approval": "reminder"}
_RETRIED = frozenset({408, 429})
_MAX_RETRY_AFTER_S = 60.0


class Delivery(BaseModel):
    """How one message's delivery ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["sent", "failed", "refused"]
    attempts: int
    detail: str
    """What the receiver answered last, or why it could not (never the URL)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # absent, or an HTTP date: our own backoff instead


class WebhookSender:
    """POSTs a message to the webhook with bounded retries; through a transport of its own (see the module)."""

    def __init__(self, config: NotifyConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._cfg = config
        self._transport = transport or httpx.AsyncHTTPTransport()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def _post(self, message: WebhookMessage) -> httpx.Response:
        request = httpx.Request("POST", self._cfg.webhook_url.get_secret_value(),
                                content=message.model_dump_json(exclude_none=True).encode(),
                                headers={"content-type": "application/json", "user-agent": "driftwise-notify"},
                                extensions={"timeout": httpx.Timeout(self._cfg.timeout_s).as_dict()})
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def send(self, message: WebhookMessage) -> Delivery:
        attempts, detail = 0, "not sent"
        try:
            async with asyncio.timeout(self._cfg.deadline_s):
                delay = self._cfg.backoff_s
                while True:
                    attempts += 1
                    wait: float | None = None
                    try:
                        response = await self._post(message)
                    except httpx.TransportError as exc:  # refused, reset, timed out: the receiver may come back
                        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    else:
                        detail = f"HTTP {response.status_code}"
                        if response.is_success:
                            return Delivery(outcome="sent", attempts=attempts, detail=detail)
                        if response.status_code < 500 and response.status_code not in _RETRIED:
                            return Delivery(outcome="refused", attempts=attempts, detail=detail)
                        wait = _retry_after(response)
                    if attempts >= self._cfg.max_attempts:
                        return Delivery(outcome="failed", attempts=attempts,
                                        detail=f"{detail} after notify.max_attempts={attempts}")
                    await asyncio.sleep(delay if wait is None else wait)  # the backoff between attempts
                    delay *= 2
        except TimeoutError:
            return Delivery(outcome="failed", attempts=attempts,
                            detail=f"{detail}; notify.deadline_s={self._cfg.deadline_s:g}s passed")


class Notifier:
    """Runs the message jobs that are due: each decision still waiting gets its message, built from it now."""

    def __init__(self, sender: WebhookSender, store: EventStore, jobs: ActingStore, link: Callable[[str], str],
                 metrics: DriftMetrics) -> None:
        self._sender = sender
        self._store = store
        self._jobs = jobs
        self._link = link
        self._metrics = metrics

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def tick(self, now: datetime) -> list[Delivery | None]:
        """Deliver every due message, concurrently (one slow delivery does not hold up the others); one
        result per job, None for a job left for later or skipped."""
        jobs = await self._jobs.due(now, kinds=NOTIFY_JOBS)
        return list(await asyncio.gather(*(self._run(job) for job in jobs)))

    async def _run(self, job: Job) -> Delivery | None:
        kind = MESSAGE_OF[job.kind]
        decision = await self._store.get(job.event_id)
        if decision is not None and in_flight(decision):
            return None  # still being recorded (the job is written first): the next tick sends it
        if decision is None or decision.state != DecisionState.AWAITING_APPROVAL:
            state = decision.state.value if decision is not None else "gone"
            await self._jobs.finish(job.id, ok=True, error=f"skipped: the decision is {state}")
            self._metrics.notifications.labels(message=kind, outcome="skipped").inc()
            return None
        wait = WaitPayload.model_validate(job.payload)
        message = approval_message(decision, kind, self._link(job.event_id), wait.expires_at)
        delivery = await self._sender.send(message)
        await self._jobs.finish(job.id, ok=delivery.outcome == "sent",
                                error=None if delivery.outcome == "sent" else delivery.detail)
        self._metrics.notifications.labels(message=kind, outcome=delivery.outcome).inc()
        if delivery.outcome == "sent":
            log.info("%s of decision %s sent (%d attempt(s))", kind, job.event_id, delivery.attempts)
        else:
            log.warning("%s of decision %s %s: %s (the message is given up; the decision waits on, see the "
                        "console)", kind, job.event_id, delivery.outcome, delivery.detail)
        return delivery


__all__ = ["NOTIFY_JOBS", "Delivery", "Notifier", "WebhookSender"]
