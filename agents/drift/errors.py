"""The drift agent's error taxonomy.

DriftAgentError
 ├── ObserveError        Argo CD (or the clock) could not tell us what drifted; `.kind` names the failure
 ├── StoreError          the event store could not persist or read
 │    └── LeaseLost      another live replica leases the decision this one was about to write (agents.drift.leases):
 │                       not a failure of the decision; this replica stops working on it
 └── DeadlineExceeded    a decision ran past drift.decision_deadline_s
Every one of them ends a decision in an escalation whose reasons carry the message.
"""

from __future__ import annotations


class DriftAgentError(Exception):
    """Base of the drift agent's errors; `kind` is a short label used in metrics and verdict reasons."""

    kind = "internal"


class ObserveError(DriftAgentError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class StoreError(DriftAgentError):
    kind = "store"


class LeaseLost(StoreError):
    """Another live replica holds the lease of a decision this process was about to write: stop working on it."""

    kind = "lease_lost"


class DeadlineExceeded(DriftAgentError):
    kind = "deadline"
