"""Stand-ins for the drift agent's core tests: only for what cannot run here (Argo CD, an LLM), typed as the real parts.

The graph, runner, recorder, replay cache, SQLite stores and checkpointer the tests build around these
are the real ones (`core_parts`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agents.drift.clock import Clock
from agents.drift.config import ArgoCDConfig, DriftConfig
from agents.drift.errors import ObserveError
from agents.drift.reasoning.base import ReasoningInput, ReasoningOutput
from protocol.models import Action, ArgoNotification, Domain, DriftEvent, DriftReport, Recommendation, Verdict

NOW = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


class FakeObserver:
    """Argo CD's view of an application with nothing drifted (Argo CD cannot run here)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    async def observe(self, event: DriftEvent, clock: Callable[[], Awaitable[datetime]]) -> DriftReport:
        self.calls += 1
        now = await clock()
        if self.fail:
            raise ObserveError("argocd_unreachable", "Argo CD http://argocd: ConnectError")
        n = event.notification
        return DriftReport(event_id=event.event_id, application=n.app, project=n.project, observed_at=now)


class FakeReasoner:
    """A reasoner that proposes enforce at 0.95 (or hangs), standing in for a hosted LLM."""

    name = "fake"

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.seen: list[ReasoningInput] = []

    async def reason(self, inp: ReasoningInput) -> ReasoningOutput:
        self.seen.append(inp)
        if self.hang:
            await asyncio.Event().wait()  # never set: only the deadline ends this
        return ReasoningOutput(recommendation=Recommendation(
            event_id=inp.event_id, agent=inp.agent, domain=Domain.OPERATIONAL, action=Action.ENFORCE,
            confidence=0.95, reasoning="stub", created_at=inp.now))


@dataclass
class Outcome:
    verdict: Verdict
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None


class PassGuardrail:
    """Turns the proposal into the verdict as it stands (the real guardrail has its own tests)."""

    async def evaluate(self, *, report, proposal, specialists, expected_specialists, now, second_opinion=None):
        rec = proposal.recommendation
        verdict = Verdict(event_id=report.event_id, action=rec.action, requires_approval=False,
                          allowed_actions=[rec.action], confidence=rec.confidence, threshold=0.8, decided_at=now)
        return Outcome(verdict, {"specialists": len(specialists)}, {"result": "pass"})


class FixedClock(Clock):
    async def now(self) -> datetime:
        return NOW


def event(app: str = "payments-api") -> DriftEvent:
    n = ArgoNotification(app=app, project="prod")
    return DriftEvent(event_id=str(uuid.uuid4()), idempotency_key=DriftEvent.key_for(n),
                      received_at=datetime.now(UTC), notification=n)


def drift_config(tmp_path: Path, **overrides: Any) -> DriftConfig:
    return DriftConfig(state_dir=tmp_path, private_key_path=tmp_path / "k", trust_store_path=tmp_path / "t",
                       argocd=ArgoCDConfig(url="http://127.0.0.1:1"), approvals_token=SecretStr("a"),
                       **{"decision_deadline_s": 30.0, "mode": "autonomous", **overrides})
