"""Per-request analysis scope: the deadline analyze() runs under, and the dependencies that failed during it.

A dependency that fails (a peer agent, an MCP server) is not an error of the analysis: it is
recorded here, and the kit lowers the answer's confidence and says why. The scope lives in a
context variable so that concurrent requests never see each other's failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from protocol.models import Recommendation

_MIN_CONFIDENCE = 0.05


@dataclass(frozen=True)
class Degradation:
    dependency: str
    reason: str
    penalty: float


@dataclass
class AnalysisScope:
    deadline: float  # loop.time() by which the answer must be ready
    degradations: list[Degradation] = field(default_factory=list)

    def remaining(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def budget(self, wanted: float, reserve: float = 0.15) -> float:
        """A timeout for one dependency call: at most `wanted`, leaving `reserve` s to finish the answer."""
        return max(0.05, min(wanted, self.remaining() - reserve))


_scope: ContextVar[AnalysisScope | None] = ContextVar("driftwise_analysis_scope", default=None)


@contextmanager
def analysis_scope(deadline_s: float) -> Iterator[AnalysisScope]:
    scope = AnalysisScope(deadline=asyncio.get_running_loop().time() + deadline_s)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def current_scope() -> AnalysisScope | None:
    return _scope.get()


def record_degradation(dependency: str, reason: str, penalty: float) -> None:
    scope = _scope.get()
    if scope is not None:
        scope.degradations.append(Degradation(dependency, reason, penalty))


def apply_degradations(rec: Recommendation, degradations: list[Degradation]) -> Recommendation:
    """Lower the confidence by each failed dependency's penalty and append the reasons to the reasoning."""
    if not degradations:
        return rec
    penalty = sum(d.penalty for d in degradations)
    lowered = round(max(_MIN_CONFIDENCE, rec.confidence - penalty), 3)
    reasons = "; ".join(f"{d.dependency}: {d.reason}" for d in degradations)
    note = (
        f"\nDegraded: confidence lowered from {rec.confidence:.2f} to {lowered:.2f} because a dependency "
        f"could not be used ({reasons})."
    )
    reasoning = (rec.reasoning + note)[:20_000]
    return rec.model_copy(update={"confidence": lowered, "reasoning": reasoning})
