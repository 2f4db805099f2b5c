"""Sandbox-only faults on a backend route: hold a request until released, delay it, or answer a 5xx.

A fault test injects them from outside the system under test (POST /sandbox/faults, see
driftwise.sandbox.control): nothing in the drift agent knows about them. Every fault is bounded —
a hold ends at its `max_s` even if nobody releases it, a delay is at most MAX_DELAY_S — and
visible: the listing shows how many requests each fault saw, let through, applied to, and how many
it holds right now, so a test can wait (bounded) until a request is held before it kills a process.

A held or delayed request runs normally afterwards, even when its client has gone meanwhile: the
backend received it, so the backend carries it out (a sync held while the drift agent was killed
still happens when released, as it would in Argo CD). A failed request never reaches the backend;
on Argo CD a failed write is still recorded in /sandbox/writes as refused (accepted: false).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwise.sandbox import error_bodies
from driftwise.sandbox.errors import SandboxError

if TYPE_CHECKING:
    from driftwise.sandbox.state import Sandbox

MAX_HOLD_S = 300.0
"""The longest a hold keeps a request; then it runs as if released (and counts as expired)."""
MAX_DELAY_S = 60.0
MAX_FAULTS = 100

Backend = Literal["argocd", "kubernetes", "prometheus", "grafana", "pagerduty"]
_APPLICATION = re.compile(r"^/api/v1/applications/([^/]+)")


class FaultSpec(BaseModel):
    """What to do to which requests; validated once, where it enters (the POST body)."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend = Field(default="argocd", description="which simulated backend's port")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(description="HTTP method to match")
    path: str = Field(description="a route pattern (/api/v1/applications/{name}/sync) or a concrete path")
    action: Literal["hold", "delay", "fail"]
    seconds: float | None = Field(
        default=None, gt=0, description=f"delay: how long (at most {MAX_DELAY_S:g}); "
        f"hold: its maximum (default and at most {MAX_HOLD_S:g})")
    status: int = Field(default=503, ge=500, le=599, description="fail: the 5xx to answer")
    skip: int = Field(default=0, ge=0, description="let this many matching requests through first")
    times: int | None = Field(default=None, ge=1, description="apply to at most this many requests; null = all")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _route(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with / (e.g. /api/v1/applications/{name}/sync)")
        if value.startswith("/sandbox"):
            raise ValueError("the sandbox's own /sandbox/ endpoints cannot be faulted")
        return value

    def bound_s(self) -> float:
        """How long one request may be kept: the delay, or the hold's maximum."""
        if self.action == "delay":
            if self.seconds is None:
                raise SandboxError('a delay needs "seconds"')
            if self.seconds > MAX_DELAY_S:
                raise SandboxError(f"a delay is at most {MAX_DELAY_S:g} seconds, not {self.seconds:g}")
            return self.seconds
        if self.seconds is not None and self.seconds > MAX_HOLD_S:
            raise SandboxError(f"a hold lasts at most {MAX_HOLD_S:g} seconds, not {self.seconds:g}")
        return self.seconds or MAX_HOLD_S


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    pattern: re.Pattern[str]
    released: asyncio.Event = field(default_factory=asyncio.Event)
    matched: int = 0
    applied: int = 0
    held: int = 0
    active: int = 0
    """Requests this fault applied to that have not finished yet (held, delayed, or running after)."""
    expired: int = 0

    def takes(self) -> bool:
        """Whether the next matching request gets the fault (counted here: call once per request)."""
        self.matched += 1
        if self.released.is_set() or self.matched <= self.spec.skip:
            return False
        if self.spec.times is not None and self.applied >= self.spec.times:
            return False
        self.applied += 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(), "matched": self.matched, "applied": self.applied,
                "held": self.held, "active": self.active, "expired": self.expired,
                "released": self.released.is_set()}


@dataclass
class Faults:
    """The faults in force, in the order they were added (the first that matches a request applies)."""

    items: dict[int, Fault] = field(default_factory=dict)
    next_id: int = 1

    def add(self, spec: FaultSpec) -> Fault:
        spec.bound_s()  # refuse an unbounded fault before it exists
        if len([f for f in self.items.values() if not f.released.is_set()]) >= MAX_FAULTS:
            raise SandboxError(f"at most {MAX_FAULTS} faults at once: DELETE /sandbox/faults clears them")
        fault = Fault(self.next_id, spec, compile_path(spec.path)[0])
        self.items[fault.id] = fault
        self.next_id += 1
        return fault

    def get(self, fault_id: int) -> Fault:
        try:
            return self.items[fault_id]
        except KeyError:
            raise SandboxError(f"no fault {fault_id} (GET /sandbox/faults lists them)") from None

    def release(self, fault_id: int) -> Fault:
        """Let the held requests go on, and stop applying this fault (it stays listed)."""
        fault = self.get(fault_id)
        fault.released.set()
        return fault

    def remove(self, fault_id: int) -> Fault:
        """Release this fault and forget it."""
        fault = self.release(fault_id)
        del self.items[fault_id]
        return fault

    def clear(self) -> None:
        """Release every fault and forget them all."""
        for fault in self.items.values():
            fault.released.set()
        self.items.clear()

    def match(self, backend: str, method: str, path: str) -> Fault | None:
        for fault in list(self.items.values()):
            spec = fault.spec
            if (spec.backend == backend and spec.method == method and fault.pattern.match(path)
                    and fault.takes()):
                return fault
        return None


class FaultMiddleware:
    """ASGI middleware in front of one backend app: applies the first matching fault to a request."""

    def __init__(self, app: ASGIApp, *, sandbox: Sandbox, backend: str) -> None:
        self._app = app
        self._sandbox = sandbox
        self._backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self._sandbox.faults
        if scope["type"] != "http" or not faults.items:
            await self._app(scope, receive, send)
            return
        fault = faults.match(self._backend, scope["method"], scope["path"])
        if fault is None:
            await self._app(scope, receive, send)
            return
        fault.active += 1
        try:
            # the whole request is read first: once held, it runs even if its client has gone
            messages, body = await _read_all(receive)
            if fault.spec.action == "fail":
                await self._fail(fault, scope, body, send)
                return
            if fault.spec.action == "delay":
                await asyncio.sleep(fault.spec.bound_s())
            else:
                fault.held += 1
                try:
                    async with asyncio.timeout(fault.spec.bound_s()):
                        await fault.released.wait()
                except TimeoutError:
                    fault.expired += 1
                finally:
                    fault.held -= 1
            await self._app(scope, _replay(messages, receive), send)
        finally:
            fault.active -= 1

    async def _fail(self, fault: Fault, scope: Scope, body: bytes, send: Send) -> None:
        status = fault.spec.status
        message = f"sandbox fault {fault.id}: {self._backend} answers {status} to {scope['method']} {scope['path']}"
        if self._backend == "argocd" and scope["method"] != "GET":
            found = _APPLICATION.match(scope["path"])
            self._sandbox.record(scope["method"], scope["path"], found.group(1) if found else None,
                                 _json_or_text(body), False, status)
        payload = error_bodies.for_backend(self._backend, status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


async def _read_all(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError:
        return {"raw": body.decode(errors="replace")[:2000]}
