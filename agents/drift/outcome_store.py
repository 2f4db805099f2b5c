"""Where outcomes are kept: one row per decision, written once (drift.sqlite, beside the decisions).

The interface is four calls (`record`, `get`, `get_many`, `followed`) over protocol models, so another
backend implements the same four; this one is a SqliteFile like the event store. `followed` reads the
event store's table in the same file (the decisions still without an outcome), the one place the two
meet. An outcome is
final: a second `record` for the same event is refused (returns False), which is what makes the
tracker's audit record appear once even if two ticks race.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.drift.errors import StoreError
from agents.drift.sqlite import SqliteFile
from protocol.models import Decision, DecisionState, Outcome

FOLLOWED = (DecisionState.AWAITING_APPROVAL, DecisionState.DONE, DecisionState.FAILED, DecisionState.SUPERSEDED)
"""Decided states whose drift is followed until it has an outcome."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_outcomes (
    event_id    TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    kind        TEXT NOT NULL,
    agreement   TEXT NOT NULL,
    at          TEXT NOT NULL,
    document    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_outcomes_app ON drift_outcomes(application, at);
"""


class OutcomeStore(SqliteFile):
    SCHEMA = _SCHEMA
    WHAT = "the outcome store"
    ERROR = StoreError

    async def record(self, application: str, outcome: Outcome) -> bool:
        """Keep `outcome`; False (and nothing written) when the event already has one."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO drift_outcomes VALUES (?, ?, ?, ?, ?, ?)",
            (outcome.event_id, application, outcome.kind.value, outcome.agreement.value, outcome.at.isoformat(),
             outcome.model_dump_json()),
        )
        return cur.rowcount == 1

    async def get(self, event_id: str) -> Outcome | None:
        row = await self.row("SELECT document FROM drift_outcomes WHERE event_id = ?", (event_id,))
        return Outcome.model_validate_json(row[0]) if row else None

    async def get_many(self, event_ids: Iterable[str]) -> dict[str, Outcome]:
        """The outcomes recorded for these events (an event without one is absent)."""
        ids = list(dict.fromkeys(event_ids))
        found: dict[str, Outcome] = {}
        for start in range(0, len(ids), 500):  # SQLite bounds the number of parameters
            chunk = ids[start:start + 500]
            rows = await self.rows(f"SELECT document FROM drift_outcomes WHERE event_id IN "
                                   f"({', '.join('?' * len(chunk))})", chunk)
            for (document,) in rows:
                outcome = Outcome.model_validate_json(document)
                found[outcome.event_id] = outcome
        return found

    async def followed(self, limit: int = 1000) -> list[Decision]:
        """Decided decisions with no outcome yet, oldest first; not those Driftwise reverted itself (its own
        executed sync: nothing people did is left to learn from)."""
        states = [s.value for s in FOLLOWED]
        rows = await self.rows(
            f"SELECT d.document FROM drift_decisions d WHERE d.state IN ({', '.join('?' * len(states))}) "
            "AND json_extract(d.document, '$.verdict') IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM drift_outcomes o WHERE o.event_id = d.event_id) "
            "AND NOT EXISTS (SELECT 1 FROM json_each(d.document, '$.applied') a "
            "WHERE json_extract(a.value, '$.kind') = 'sync' AND json_extract(a.value, '$.executed')) "
            "ORDER BY d.received_at LIMIT ?", [*states, limit])
        return [Decision.model_validate_json(r[0]) for r in rows]
