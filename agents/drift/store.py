"""The durable event/decision store (SQLite, state_dir/drift.sqlite; the audit log shares the file).

One row per drift event holds its Decision document. An event is persisted before the webhook
answers; `open` marks a decision not yet decided, and a partial unique index on the dedup key
makes "one open decision per application" atomic across concurrent webhooks.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

from agents.drift.errors import StoreError
from agents.drift.sqlite import SqliteFile
from protocol.models import Decision, DecisionState, DriftEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_decisions (
    event_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    application     TEXT NOT NULL,
    state           TEXT NOT NULL,
    open            INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    document        TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS drift_decisions_open_key
    ON drift_decisions(idempotency_key) WHERE open = 1;
CREATE INDEX IF NOT EXISTS drift_decisions_app ON drift_decisions(application, received_at);
"""


class EventStore(SqliteFile):
    # autocommit + explicit BEGIN IMMEDIATE: a deferred transaction that reads then writes fails at once
    # with "database is locked" in WAL mode when another connection (the audit log) wrote in between
    SCHEMA = _SCHEMA
    WHAT = "the event store"
    ERROR = StoreError

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        self._lock = asyncio.Lock()

    async def _begin_immediate(self, attempts: int = 6) -> None:
        """Take the write lock; SQLite can answer "locked" at once (not after busy_timeout) under contention."""
        for attempt in range(attempts):
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == attempts - 1:
                    raise StoreError(f"event store {self.db_path} stayed locked: {exc}") from exc
                await asyncio.sleep(0.02 * 2**attempt)

    async def accept(self, event: DriftEvent, now: datetime) -> tuple[Decision, bool]:
        """Persist a new event as a `received` decision, or join the open one of the same application.

        Returns (decision, duplicate).
        """
        decision = Decision(event=event, state=DecisionState.RECEIVED, updated_at=now)
        async with self._lock:
            await self._begin_immediate()
            try:
                await self.db.execute(
                    "INSERT INTO drift_decisions VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                    (
                        event.event_id,
                        event.idempotency_key,
                        event.notification.app,
                        decision.state.value,
                        event.received_at.isoformat(),
                        now.isoformat(),
                        decision.model_dump_json(),
                    ),
                )
                await self.db.execute("COMMIT")
                return decision, False
            except sqlite3.IntegrityError:
                await self.db.execute("ROLLBACK")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            existing = await self._one(
                "SELECT document FROM drift_decisions WHERE idempotency_key = ? AND open = 1",
                (event.idempotency_key,),
            )
        if existing is None:  # closed in between: a fresh attempt will insert
            return await self.accept(event, now)
        return existing, True

    async def save(self, decision: Decision) -> None:
        """Write a decision's current document; a final state closes it for dedup."""
        async with self._lock:
            # one statement in autocommit: its own transaction, with the busy handler honoured
            await self.db.execute(
                "UPDATE drift_decisions SET state = ?, open = ?, updated_at = ?, document = ? WHERE event_id = ?",
                (
                    decision.state.value,
                    0 if decision.state.final else 1,
                    decision.updated_at.isoformat(),
                    decision.model_dump_json(),
                    decision.event.event_id,
                ),
            )

    async def get(self, event_id: str) -> Decision | None:
        return await self._one("SELECT document FROM drift_decisions WHERE event_id = ?", (event_id,))

    async def list(
        self, application: str | None = None, state: str | None = None, limit: int = 500
    ) -> list[Decision]:
        sql = "SELECT document FROM drift_decisions WHERE 1=1"
        args: list[object] = []
        if application:
            sql += " AND application = ?"
            args.append(application)
        if state:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY received_at DESC LIMIT ?"
        args.append(limit)
        rows = await self.rows(sql, args)
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def undecided(self) -> list[Decision]:
        """Events persisted but not decided (crash recovery resumes them)."""
        rows = await self.rows(
            "SELECT document FROM drift_decisions WHERE open = 1 ORDER BY received_at"
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def latest_per_application(self) -> list[Decision]:
        """The newest decision of every application Driftwise has seen (the governed ones)."""
        rows = await self.rows(
            "SELECT d.document FROM drift_decisions d JOIN (SELECT idempotency_key, max(received_at) AS at "
            "FROM drift_decisions GROUP BY idempotency_key) m "
            "ON d.idempotency_key = m.idempotency_key AND d.received_at = m.at"
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def count_state(self, state: str) -> int:
        row = await self.row("SELECT count(*) FROM drift_decisions WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    async def count(self) -> int:
        row = await self.row("SELECT count(*) FROM drift_decisions")
        return int(row[0]) if row else 0

    async def _one(self, sql: str, args: tuple[object, ...]) -> Decision | None:
        row = await self.row(sql, args)
        return Decision.model_validate_json(row[0]) if row else None
