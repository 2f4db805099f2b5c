"""Where outcomes are kept: one row per decision, written once, beside the decisions (drift.sqlite or the
PostgreSQL state; its table is migration 3 in agents.drift.migrations).

The interface is four calls (`record`, `get`, `get_many`, `followed`) over protocol models, a `Store` like
the event store, so both backends run the same code. `followed` reads the event store's table in the same
database (the decisions still without an outcome), the one place the two meet. An outcome is final: a
second `record` for the same event is refused (returns False), which is what makes the tracker's audit
record appear once even if two ticks race.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.drift.database import Store
from agents.drift.errors import StoreError
from protocol.models import Decision, DecisionState, Outcome

FOLLOWED = (DecisionState.AWAITING_APPROVAL, DecisionState.DONE, DecisionState.FAILED, DecisionState.SUPERSEDED,
            DecisionState.EXPIRED)
"""Decided states whose drift is followed until it has an outcome."""

_SYNCED_ITSELF = {
    # an executed sync among the decision's applied actions (the document's `applied` list)
    "sqlite": "SELECT 1 FROM json_each(d.document, '$.applied') a "
              "WHERE json_extract(a.value, '$.kind') = 'sync' AND json_extract(a.value, '$.executed')",
    "postgres": "SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.document::jsonb -> 'applied') = 'array' "
                "THEN d.document::jsonb -> 'applied' ELSE '[]'::jsonb END) a "
                "WHERE a ->> 'kind' = 'sync' AND a ->> 'executed' = 'true'",
}


class OutcomeStore(Store):
    WHAT = "the outcome store"
    ERROR = StoreError

    async def record(self, application: str, outcome: Outcome) -> bool:
        """Keep `outcome`; False (and nothing written) when the event already has one."""
        written = await self.execute(
            "INSERT INTO drift_outcomes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (outcome.event_id, application, outcome.kind.value, outcome.agreement.value, outcome.at.isoformat(),
             outcome.model_dump_json()),
        )
        return written == 1

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
            f"AND {self.db.json_text('d.document', 'verdict')} IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM drift_outcomes o WHERE o.event_id = d.event_id) "
            f"AND NOT EXISTS ({_SYNCED_ITSELF[self.db.dialect]}) "
            "ORDER BY d.received_at LIMIT ?", [*states, limit])
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def agreements(self) -> list[tuple[str, str, str, str]]:
        """(project, decided action, agreement, decided_at ISO) of every outcome kept: the agreement gauges' input,
        read without the documents."""
        project = (f"COALESCE({self.db.json_text('d.document', 'report', 'project')}, "
                   f"{self.db.json_text('d.document', 'event', 'notification', 'project')})")
        rows = await self.rows(
            f"SELECT {project}, {self.db.json_text('o.document', 'action')}, o.agreement, "
            f"{self.db.json_text('o.document', 'decided_at')} FROM drift_outcomes o "
            "JOIN drift_decisions d ON d.event_id = o.event_id")
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def prune(self) -> int:
        """Retention: the outcomes of decisions no longer kept (agents.drift.retention pruned them); how many."""
        return await self.execute(
            "DELETE FROM drift_outcomes WHERE event_id NOT IN (SELECT event_id FROM drift_decisions)")
