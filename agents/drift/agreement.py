"""Which outcome agrees with which decision: the one table, in code (README's "Agreement" section is
`markdown()` of it, and a test keeps the two equal).

Escalations are counted apart, whatever became of the drift: asking a human is the cost of the
decision, not a right or wrong answer. Superseded and gone say nothing about the decision. A
disagreement where Driftwise chose the weaker action (allow or defer) and people reverted the drift
within an hour is `possibly_unsafe`: the drift was harmful enough for someone to undo it at once.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from protocol.models import Action, Agreement, OutcomeKind

UNSAFE_WITHIN = timedelta(hours=1)
"""A revert this soon after a weaker decision makes its disagreement `possibly_unsafe`."""
WEAKER = frozenset({Action.ALLOW, Action.DEFER})


class Cell(StrEnum):
    AGREES = "agrees"
    DISAGREES = "disagrees"
    BY_WINDOW = "agrees at or before the window"
    """else disagrees"""
    IF_CHOSEN = "agrees if the approver chose it"
    """the decided action; another action, disagrees"""
    APART = "counted apart"
    NOT_JUDGED = "not judged"


_O = OutcomeKind
TABLE: dict[Action, dict[OutcomeKind, Cell]] = {
    Action.ALLOW: {_O.REVERTED: Cell.DISAGREES, _O.ADOPTED: Cell.AGREES, _O.PERSISTED: Cell.AGREES,
                   _O.SUPERSEDED: Cell.NOT_JUDGED, _O.GONE: Cell.NOT_JUDGED, _O.APPROVED: Cell.IF_CHOSEN,
                   _O.REJECTED: Cell.DISAGREES},
    Action.ENFORCE: {_O.REVERTED: Cell.AGREES, _O.ADOPTED: Cell.DISAGREES, _O.PERSISTED: Cell.DISAGREES,
                     _O.SUPERSEDED: Cell.NOT_JUDGED, _O.GONE: Cell.NOT_JUDGED, _O.APPROVED: Cell.IF_CHOSEN,
                     _O.REJECTED: Cell.DISAGREES},
    Action.DEFER: {_O.REVERTED: Cell.BY_WINDOW, _O.ADOPTED: Cell.DISAGREES, _O.PERSISTED: Cell.DISAGREES,
                   _O.SUPERSEDED: Cell.NOT_JUDGED, _O.GONE: Cell.NOT_JUDGED, _O.APPROVED: Cell.IF_CHOSEN,
                   _O.REJECTED: Cell.DISAGREES},
    Action.ESCALATE: dict.fromkeys(OutcomeKind, Cell.APART),
}
"""decided action -> outcome -> how they agree. Every action and every outcome has its cell."""


def agreement(action: Action, outcome: OutcomeKind, after: timedelta, *, by_window: bool = True,
              chosen: Action | None = None) -> Agreement:
    """How `outcome`, `after` the decision, agrees with the decided `action`.

    `by_window`: a revert came at or before the deferral's window (defer only). `chosen`: the action an
    approver chose (approved only)."""
    cell = TABLE[action][outcome]
    if cell == Cell.APART:
        return Agreement.ESCALATION
    if cell == Cell.NOT_JUDGED:
        return Agreement.NOT_JUDGED
    agrees = (cell == Cell.AGREES or (cell == Cell.BY_WINDOW and by_window)
              or (cell == Cell.IF_CHOSEN and chosen == action))
    if agrees:
        return Agreement.AGREES
    if action in WEAKER and outcome == OutcomeKind.REVERTED and after <= UNSAFE_WITHIN:
        return Agreement.POSSIBLY_UNSAFE
    return Agreement.DISAGREES


def markdown() -> str:
    """The table as README shows it."""
    kinds = list(OutcomeKind)
    lines = ["| decided \\ outcome | " + " | ".join(k.value for k in kinds) + " |",
             "| --- | " + " | ".join("---" for _ in kinds) + " |"]
    for action, row in TABLE.items():
        lines.append(f"| {action.value} | " + " | ".join(row[k].value for k in kinds) + " |")
    return "\n".join(lines)
