"""Step 6, sign: the proposal as an Ed25519 JWS for the drift agent's own guardrail."""

from __future__ import annotations

from agents.drift.steps.common import StepOrderError
from agents.drift.steps.deps import GraphDeps
from agents.drift.steps.state import DriftState, Update
from protocol.models import SignedRecommendation


class Signed(Update):
    signed_proposal: SignedRecommendation


class Sign:
    name = "sign"

    def __init__(self, deps: GraphDeps) -> None:
        self._signer = deps.signer
        self._audience = [deps.config.agent_id]

    async def __call__(self, state: DriftState) -> Signed:
        if state.proposal is None:
            raise StepOrderError(f"event {state.event.event_id}: nothing to sign (reason has not run)")
        return Signed(signed_proposal=self._signer.sign_recommendation(state.proposal, self._audience))
