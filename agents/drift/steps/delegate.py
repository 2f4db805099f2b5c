"""Step 4, delegate: ask the specialists the drift concerns, in parallel; verify each answer and use its token once.

Every answer received goes on to the guardrail (which re-checks it and discards what fails, naming
why). An answer that verifies here and whose `jti` the replay cache accepts travels on with its
verified claims as `specialists`, the reasoner's input; one that does not is `unreachable`, with
the VerifyFailure as its reason.
"""

from __future__ import annotations

import asyncio
import logging

from agents.drift.steps.common import report_of
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Unreachable, Update
from protocol.errors import VerificationError
from protocol.models import AnalysisRequest, SignedRecommendation
from protocol.signing import VerifiedRecommendation

log = logging.getLogger(__name__)


class Delegated(Update):
    expected: list[str]
    answers: list[SignedRecommendation]
    specialists: list[VerifiedRecommendation]
    unreachable: list[Unreachable]


class Delegate:
    name = "delegate"

    def __init__(self, deps: GraphDeps) -> None:
        self._cfg = deps.config
        self._peers = deps.peers
        self._wants = deps.wants
        self._verifier = deps.verifier
        self._replay = deps.replay

    async def __call__(self, state: DriftState, consumer: str) -> Delegated:
        """`consumer` names this run of the step (LangGraph's task id): a replay of the same run after a
        crash may use its own tokens again, nothing else may (agents.drift.replay)."""
        report = report_of(state)
        cfg = self._cfg
        chosen = {name: spec for name, spec in cfg.specialists.items()
                  if spec.enabled and self._wants(spec.kinds, spec.paths, report)}
        request = AnalysisRequest(event_id=report.event_id, requester=cfg.agent_id, report=report,
                                  evidence=state.evidence)
        names = sorted(chosen)

        async def ask(name: str) -> SignedRecommendation:
            spec = chosen[name]
            return await asyncio.wait_for(
                self._peers.analyze(spec.url, request, spec.token.get_secret_value(), cfg.delegate_timeout_s),
                timeout=cfg.delegate_timeout_s,
            )

        results = await asyncio.gather(*(ask(n) for n in names), return_exceptions=True)
        answers: list[SignedRecommendation] = []
        verified: list[VerifiedRecommendation] = []
        unreachable: list[Unreachable] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                reason = "timeout" if isinstance(result, TimeoutError) else type(result).__name__
                detail = str(result) or f"no answer within {cfg.delegate_timeout_s}s"
                log.warning("specialist %s unreachable for %s: %s", name, report.event_id, detail)
                unreachable.append(Unreachable(agent=name, reason=reason, detail=detail[:500]))
                continue
            answers.append(result)
            try:
                accepted = self._verifier.verified_recommendation(result, report.event_id)
                await self._replay.consume(accepted.claims, consumer)
            except VerificationError as exc:
                log.warning("answer of specialist %s for %s refused: %s", name, report.event_id, exc)
                unreachable.append(Unreachable(agent=name, reason=exc.reason.value, detail=exc.detail[:500]))
                continue
            verified.append(accepted)
        return Delegated(expected=names, answers=answers, specialists=verified, unreachable=unreachable)
