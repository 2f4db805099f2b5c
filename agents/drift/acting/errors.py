"""Errors of acting on a verdict (part of the drift agent's taxonomy)."""

from __future__ import annotations

from agents.drift.errors import DriftAgentError


class ApplyError(DriftAgentError):
    """Argo CD refused or failed a write; `.kind` names it (argocd_refused, argocd_unreachable, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
