"""What the steps use, built once per process (agents.drift.wiring) and injectable in tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agents.drift.acting.applier import Mode
from agents.drift.clock import Clock
from agents.drift.config import DriftConfig
from agents.drift.observe import Observer, ToolCaller
from agents.drift.reasoning.base import Reasoner
from protocol.models import (
    Action,
    AnalysisRequest,
    AppliedAction,
    DriftReport,
    Recommendation,
    SignedRecommendation,
    Verdict,
)
from protocol.signing import Signer, TokenClaims, Verifier


class PlannedCallLike(Protocol):
    """agents.drift.evidence_plan.PlannedCall: an evidence id and the need's typed arguments."""

    id: str
    args: Any

    @property
    def server(self) -> str: ...

    @property
    def tool(self) -> str: ...

    @property
    def arguments(self) -> dict[str, Any]: ...


class Peers(Protocol):
    async def analyze(
        self, url: str, request: AnalysisRequest, token: str, timeout_s: float
    ) -> SignedRecommendation: ...


class ReplayGuard(Protocol):
    """Uses a verified token once (agents.drift.replay.ReplayStore); raises VerificationError(REPLAYED)."""

    async def consume(self, claims: TokenClaims, consumer: str) -> None: ...


class GuardrailOutcomeLike(Protocol):
    verdict: Verdict
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None


class GuardrailLike(Protocol):
    async def evaluate(
        self, *, report: DriftReport, proposal: SignedRecommendation, specialists: list[SignedRecommendation],
        expected_specialists: list[str], now: datetime, second_opinion: Recommendation | None = None,
    ) -> GuardrailOutcomeLike: ...


class ApplierLike(Protocol):
    """The slice of agents.drift.acting.applier.Applier the steps use."""

    async def apply(
        self, *, mode: Mode, action: Action, report: DriftReport, verdict: Verdict, now: datetime,
        approved_by: str | None = None,
    ) -> tuple[list[AppliedAction], str | None]: ...

    async def request_approval(self, report: DriftReport, verdict: Verdict, mode: Mode, now: datetime
                               ) -> list[AppliedAction]: ...


@dataclass
class GraphDeps:
    config: DriftConfig
    clock: Clock
    observer: Observer
    tools: ToolCaller | None
    plan: Callable[[DriftReport, datetime], list[PlannedCallLike]]
    peers: Peers
    wants: Callable[[list[str], list[str], DriftReport], bool]
    reasoner: Reasoner
    signer: Signer
    verifier: Verifier
    replay: ReplayGuard
    guardrail: GuardrailLike
    applier: ApplierLike | None = None
    """None: decide only, act on nothing (unit tests of the deciding part)."""
