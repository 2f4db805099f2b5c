"""Step 5, reason: the drift agent's own Recommendation from the report, the evidence and the accepted answers."""

from __future__ import annotations

from agents.drift.reasoning.base import ReasoningInput
from agents.drift.steps.common import report_of
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Update
from protocol.models import LlmUsage, Recommendation


class Reasoned(Update):
    proposal: Recommendation
    second_opinion: Recommendation | None
    llm: LlmUsage | None


class Reason:
    name = "reason"

    def __init__(self, deps: GraphDeps) -> None:
        self._cfg = deps.config
        self._reasoner = deps.reasoner

    async def __call__(self, state: DriftState) -> Reasoned:
        report = report_of(state)
        cfg = self._cfg
        out = await self._reasoner.reason(ReasoningInput(
            event_id=report.event_id,
            agent=cfg.agent_id,
            report=report,
            evidence=state.evidence,
            specialists=[v.recommendation for v in state.specialists],  # verified and used once by delegate
            unreachable_specialists=sorted({u.agent for u in state.unreachable}),
            now=report.observed_at,
            confidence_threshold=cfg.confidence_threshold,
            allow_ttl_h=cfg.allow_ttl_h,
        ))
        rec = out.recommendation
        if rec.agent != cfg.agent_id or rec.event_id != report.event_id:
            rec = rec.model_copy(update={"agent": cfg.agent_id, "event_id": report.event_id})
        return Reasoned(proposal=rec, second_opinion=out.second_opinion, llm=out.llm)
