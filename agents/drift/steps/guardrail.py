"""Step 7, guardrail: each carried token re-checked (signature, binding, expiry), the policy asked, the verdict signed.

The re-check uses no replay cache: delegate used each token once already (agents.drift.replay)."""

from __future__ import annotations

from typing import Any

from agents.drift.steps.common import StepOrderError, report_of
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Mode, Update
from protocol.models import SignedVerdict


class Guarded(Update):
    verdict: SignedVerdict
    opa_input: dict[str, Any]
    opa_result: dict[str, Any] | None
    mode: Mode


class Guard:
    name = "guardrail"

    def __init__(self, deps: GraphDeps) -> None:
        self._cfg = deps.config
        self._guardrail = deps.guardrail
        self._signer = deps.signer

    async def __call__(self, state: DriftState) -> Guarded:
        report = report_of(state)
        if state.signed_proposal is None:
            raise StepOrderError(f"event {state.event.event_id}: no signed proposal (sign has not run)")
        outcome = await self._guardrail.evaluate(
            report=report, proposal=state.signed_proposal, specialists=state.answers,
            expected_specialists=state.expected, now=report.observed_at, second_opinion=state.second_opinion,
        )
        signed = self._signer.sign_verdict(outcome.verdict, [self._cfg.agent_id])
        return Guarded(verdict=signed, opa_input=outcome.opa_input, opa_result=outcome.opa_result,
                       mode=self._cfg.mode_for(report.project))
