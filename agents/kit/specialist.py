"""What a specialist is: a card (name, description, skills with examples) and one typed `analyze()`.

    class MySpecialist(Specialist):
        description = "Judges ... drift"
        domain = Domain.SECURITY
        skills = (Skill(id="...", name="...", description="...", tags=("...",), examples=("...",)),)

        async def analyze(self, request: AnalysisRequest) -> Recommendation:
            ...
            return self.recommend(request, Action.ENFORCE, 0.9, "reasoning naming fields", findings)

    SPECIALIST = MySpecialist

Everything else (A2A server, validation, signing, deadline, auth, tracing, peers) is the kit's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from agents.kit.deadline import current_scope, record_degradation
from agents.kit.errors import PeerError
from protocol.errors import VerificationError
from protocol.models import Action, AnalysisRequest, Domain, Evidence, Finding, Recommendation, Scope
from protocol.needs import BACKEND, TOOL, Need

if TYPE_CHECKING:
    from agents.kit.runtime import Runtime

__all__ = ["Skill", "Specialist"]


@dataclass(frozen=True)
class Skill:
    """One skill on the agent card."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


class Specialist(ABC):
    """Base class of every specialist agent; subclass it and expose the class as `SPECIALIST`."""

    description: ClassVar[str]
    domain: ClassVar[Domain]
    skills: ClassVar[tuple[Skill, ...]]
    version: ClassVar[str] = "1.0.0"
    consults: ClassVar[tuple[str, ...]] = ()
    """Peer agents it may ask with consult() (names under settings `specialists:`); it gets only their tokens."""
    peer_penalty: ClassVar[float] = 0.3
    """Confidence lost when a consulted peer agent cannot answer."""
    context_penalty: ClassVar[float] = 0.1
    needs: ClassVar[tuple[Need, ...]] = ()
    """The evidence needs `context()` reads (through the same bindings as the drift agent's)."""
    """Confidence lost when an MCP context call fails (context enriches, the drift itself decides)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.agent = runtime.config.agent
        self.options: dict[str, Any] = runtime.config.options

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load rules, open resources. Called once before the server accepts requests."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what start() opened."""

    @abstractmethod
    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        """Judge one drift. Read only the request (report + evidence) and what the kit's helpers fetch."""

    # --- answers ---------------------------------------------------------------------------------

    def recommend(
        self, request: AnalysisRequest, action: Action, confidence: float, reasoning: str,
        findings: list[Finding] | None = None, *, evidence_refs: list[str] | None = None,
        scope: Scope | None = None,
    ) -> Recommendation:
        return Recommendation(
            event_id=request.event_id, agent=self.agent, domain=self.domain, action=action,
            confidence=confidence, reasoning=reasoning[:20_000], findings=findings or [],
            evidence_refs=evidence_refs or [], scope=scope, created_at=datetime.now(UTC),
        )

    def abstain(
        self, request: AnalysisRequest, reasoning: str, findings: list[Finding] | None = None,
        confidence: float = 0.9,
    ) -> Recommendation:
        return Recommendation(
            kind="abstain", event_id=request.event_id, agent=self.agent, domain=self.domain,
            confidence=confidence, reasoning=reasoning[:20_000], findings=findings or [],
            created_at=datetime.now(UTC),
        )

    # --- dependencies (failures lower confidence; they never raise) -------------------------------

    async def consult(self, peer: str, request: AnalysisRequest) -> Recommendation | None:
        """Ask peer agent `peer` (configured in the kit's peers) and return its verified recommendation.

        None when it cannot be had (not configured, unreachable, late, unsigned or wrongly signed);
        the failure is recorded and the kit lowers this answer's confidence, naming the cause.
        """
        endpoint = self.runtime.config.peers.get(peer)
        if endpoint is None:
            record_degradation(peer, "peer agent is not configured", self.peer_penalty)
            return None
        scope = current_scope()
        timeout = scope.budget(self.runtime.config.peer_timeout_s) if scope else self.runtime.config.peer_timeout_s
        asked = request.model_copy(update={"requester": self.agent})
        try:
            signed, answers = await self.runtime.peers.answer(endpoint.url, asked, endpoint.token, timeout)
            verified = self.runtime.verifier.verified_recommendation(signed, request.event_id, answers)
            self.runtime.replay.consume(verified.claims)
            return verified.recommendation
        except PeerError as exc:
            record_degradation(peer, exc.detail, self.peer_penalty)
        except VerificationError as exc:
            record_degradation(peer, f"its answer does not verify ({exc})", self.peer_penalty)
        return None

    async def context(self, args: Any, *, evidence_id: str, request: AnalysisRequest) -> Evidence | None:
        """Read one evidence need (protocol/needs.py arguments) through the kit's bindings; None (and a recorded
        degradation) when it fails."""
        sources, pool = self.runtime.sources, self.runtime.mcp
        scope = current_scope()
        timeout = scope.budget(self.runtime.config.mcp_timeout_s) if scope else self.runtime.config.mcp_timeout_s
        observed_at = request.report.observed_at
        if sources is not None and args.need in sources.bindings:
            evidence = await sources.fetch(args, evidence_id=evidence_id, observed_at=observed_at, timeout_s=timeout)
        elif sources is None and pool is not None and BACKEND[args.need] in self.runtime.config.mcp_servers:
            # a pool given directly (agents.kit.testing): Driftwise's own tool for the need
            evidence = await pool.call(BACKEND[args.need], TOOL[args.need], args.arguments(), evidence_id=evidence_id,
                                       observed_at=observed_at, timeout_s=timeout)
        else:
            return None
        if evidence.error is not None:
            record_degradation(f"mcp {evidence.via or evidence.tool}", evidence.error, self.context_penalty)
            return None
        return evidence
