"""One open decision per application drift: when a decision is open, and what a new notification does.

A decision is *open* while something about it can still happen:

| the decision                                   | open? | in flight? |
| ---------------------------------------------- | ----- | ---------- |
| received, deciding                             | yes   | yes        |
| awaiting approval                              | yes   | no         |
| applying (a human's answer is being carried out)| yes   | yes        |
| done: deferred, its sync not yet run           | yes   | no         |
| done: allowed, its allowance not yet expired   | yes   | no         |
| done otherwise, failed, superseded, unknown app| no    | no         |

What a notification (webhook, A2A, or the periodic re-read) leads to, given the application's latest
observed decision, compared on the revision and the digest of the drifted paths and values:

| the latest decision            | same revision and drift | drift or revision changed          |
| ------------------------------ | ----------------------- | ---------------------------------- |
| in flight                      | waits for it, then ...  | waits for it, then ...             |
| open                           | joins it                | supersedes it, decided anew        |
| closed (terminal)              | joins it                | decided anew                       |
| expired (nobody answered)      | decided anew            | decided anew                       |

Intake joins a notification to the open decision of the same application and revision at once,
without reading Argo CD; everything else is settled after reading the drift (agents.drift.admission).
Pure functions of protocol models only: the store and the admission step both use them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

from protocol.models import Action, Decision, DecisionState, DriftReport

_RUNNING = frozenset({DecisionState.RECEIVED, DecisionState.DECIDING, DecisionState.APPLYING})
_WAITING = frozenset({DecisionState.AWAITING_APPROVAL})
UNDECIDED = _RUNNING
"""States a crash can leave a decision in that the runner resumes."""


def changes_digest(report: DriftReport) -> str:
    """What drifted, independent of when it was observed: resources, paths, operations and values."""
    items = sorted(
        [d.ref.key, c.path, c.op, json.dumps(c.before, sort_keys=True), json.dumps(c.after, sort_keys=True)]
        for d in report.drifts
        for c in d.changes
    )
    return hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()


def taken_action(decision: Decision) -> Action | None:
    """The action a decision carried out: the approver's choice, else the verdict's."""
    if decision.approval is not None:
        if decision.approval.decision == "reject":
            return None
        return decision.approval.action
    return decision.verdict.verdict.action if decision.verdict is not None else None


def _pending_deferred_sync(decision: Decision) -> bool:
    scheduled = any(a.kind == "schedule" and a.executed for a in decision.applied)
    synced_after = any(a.kind == "sync" and a.detail.get("reason") == "deferred" for a in decision.applied)
    return scheduled and not synced_after


def _allowance_running(decision: Decision) -> bool:
    allowed = any(a.kind == "ignore_differences" and a.executed for a in decision.applied)
    expired = any(a.kind == "remove_ignore_differences" for a in decision.applied)
    return allowed and not expired


def in_flight(decision: Decision) -> bool:
    """Being decided or acted on right now: never superseded, a new drift waits for it."""
    return decision.state in _RUNNING


def is_open(decision: Decision) -> bool:
    """Still open (see the table above): a repeat joins it, a changed drift supersedes it."""
    if decision.state in _RUNNING or decision.state in _WAITING:
        return True
    if decision.state != DecisionState.DONE:
        return False
    action = taken_action(decision)
    if action == Action.DEFER:
        return _pending_deferred_sync(decision)
    if action == Action.ALLOW:
        return _allowance_running(decision)
    return False


class Ruling(StrEnum):
    DECIDE = "decide"
    """Nothing of this drift is decided yet: decide it."""
    JOIN = "join"
    """The same drift at the same revision is (or was) decided: the new event is that decision."""
    SUPERSEDE = "supersede"
    """The drift or revision changed while the earlier decision was open: it ends, the new one is decided."""


@dataclass(frozen=True)
class Outcome:
    ruling: Ruling
    other: Decision | None = None
    """The decision joined or superseded."""


def rule(revision: str, digest: str, latest: Decision | None) -> Outcome:
    """What a newly observed drift (its revision and changes digest) does, given the application's latest
    observed decision, which is not in flight (the caller waited for that)."""
    if latest is None or latest.report is None or latest.state == DecisionState.EXPIRED:
        return Outcome(Ruling.DECIDE)  # an expired decision decided nothing: the drift is decided anew
    if latest.report.revision == revision and changes_digest(latest.report) == digest:
        return Outcome(Ruling.JOIN, latest)
    if is_open(latest):
        return Outcome(Ruling.SUPERSEDE, latest)
    return Outcome(Ruling.DECIDE)
