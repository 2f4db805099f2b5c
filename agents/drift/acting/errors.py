"""Errors of acting on a verdict (part of the drift agent's taxonomy)."""

from __future__ import annotations

from agents.drift.errors import DriftAgentError
from protocol.models import AppliedAction


class ApplyError(DriftAgentError):
    """Argo CD refused or failed a write; `.kind` names it (argocd_refused, argocd_unreachable, ...)."""

    def __init__(self, kind: str, message: str, done: list[AppliedAction] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        # the writes already made before this one failed: the decision keeps them in its record
        self.done: list[AppliedAction] = list(done or [])


class NoAnswer(ApplyError):
    """The write was sent but its answer never came (a read timeout): it may be carried out, so it is in
    flight, not failed — reconciled from Argo CD's own state."""
