"""Why a decision ends with its final action, in words: the drift agent's proposal, or what overruled it.

The final action is the verdict's (a verdict that needs a human reads `escalate`, as the
evaluation scores it). When it differs from the drift agent's own proposal — a specialist's
escalate, a binding security enforce, a sync window, an OPA deny, a confidence below the
threshold — the explanation leads with the guardrail's reasons that decided and the answers of the
specialists that said the final action, and shows the proposal as what was overruled.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftwise.evaluation import final_action
from protocol.models import Action, Decision, Recommendation

__all__ = ["FinalExplanation", "explain_final"]

_FOLLOWS_PROPOSAL = "policy.proposal"


@dataclass(frozen=True)
class FinalExplanation:
    action: Action | None
    proposal: Recommendation | None
    overruled: bool
    """The final action is not the drift agent's proposal."""
    because: list[str]
    """The guardrail's reasons that decided (or a human's approval), most decisive first."""
    deciders: list[Recommendation]
    """Specialists whose answer is the final action."""

    @property
    def summary(self) -> str:
        """One line: the final action and why."""
        action = self.action.value if self.action else "none"
        if self.proposal is None:
            return f"{action}: {self.because[0] if self.because else 'no verified proposal'}"
        proposed = self.proposal.action.value if self.proposal.action else "abstain"
        if not self.overruled:
            return f"{action}: the drift agent's proposal (confidence {self.proposal.confidence:.2f})"
        return f"{action}, not the drift agent's {proposed}: {self.because[0] if self.because else 'the guardrail'}"

    def text(self, limit: int = 600) -> str:
        """The final panel's body: what decided, then what was proposed."""
        if self.proposal is None:
            return "\n".join(self.because) or "no verified proposal from the drift agent"
        if not self.overruled:
            return self.proposal.reasoning
        lines = [f"Why {self.action.value if self.action else 'none'}:", *(f"- {b}" for b in self.because)]
        for rec in self.deciders:
            said = rec.action.value if rec.action else "abstain"
            lines.append(f"- {rec.agent} ({rec.domain.value}) said {said}, confidence {rec.confidence:.2f}: "
                         f"{_short(rec.reasoning, limit)}")
        proposed = self.proposal.action.value if self.proposal.action else "abstain"
        lines += ["", f"Overruled: the drift agent proposed {proposed} (confidence {self.proposal.confidence:.2f}): "
                      f"{_short(self.proposal.reasoning, limit)}"]
        return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def explain_final(decision: Decision) -> FinalExplanation:
    action = final_action(decision)
    proposal = decision.proposal.recommendation if decision.proposal else None
    verdict = decision.verdict.verdict if decision.verdict else None
    because = [f"{r.code}: {r.message}" for r in (verdict.reasons if verdict else []) if r.code != _FOLLOWS_PROPOSAL]
    if verdict is None and decision.error:
        because.append(decision.error)
    if decision.approval is not None:
        because.insert(0, f"{decision.approval.approver} chose to {decision.approval.decision}"
                          + (f" with {decision.approval.action.value}" if decision.approval.action else ""))
    overruled = proposal is not None and proposal.action != action
    deciders = [s.recommendation for s in decision.recommendations
                if overruled and s.recommendation.action is not None and s.recommendation.action == action]
    return FinalExplanation(action=action, proposal=proposal, overruled=overruled, because=because, deciders=deciders)
