"""The durable event/decision store (SQLite, state_dir/drift.sqlite; the audit log shares the file).

One row per drift event holds its Decision document. An event is persisted before the webhook
answers; `open` marks a decision still open (agents.drift.open_rule.is_open: deciding, awaiting a
human, deferred with its sync not run, allowed and not expired). A notification of the same
application and revision joins the open decision inside one IMMEDIATE transaction, so concurrent
webhooks (this process or another) agree on one. An event that joins a decision after its drift was
read (agents.drift.admission) leaves a row in `drift_joins`, and `get` answers with that decision.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agents.drift.errors import StoreError
from agents.drift.open_rule import UNDECIDED, is_open
from agents.drift.sqlite import SqliteFile
from protocol.models import Action, Decision, DecisionState, DriftEvent, ProjectName

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
-- one open decision per application *and revision* now: a new revision is a new event that
-- supersedes the open one once read, so the old one-per-application unique index goes
DROP INDEX IF EXISTS drift_decisions_open_key;
CREATE INDEX IF NOT EXISTS drift_decisions_open ON drift_decisions(idempotency_key, open);
CREATE INDEX IF NOT EXISTS drift_decisions_app ON drift_decisions(application, received_at);
-- the console's filters and its queue, paged in SQL (agents.drift.console): expression indexes, no new columns
CREATE INDEX IF NOT EXISTS drift_decisions_received ON drift_decisions(received_at, event_id);
CREATE INDEX IF NOT EXISTS drift_decisions_state ON drift_decisions(state, received_at);
CREATE INDEX IF NOT EXISTS drift_decisions_project
    ON drift_decisions(json_extract(document, '$.event.notification.project'), received_at);
CREATE TABLE IF NOT EXISTS drift_joins (
    event_id   TEXT PRIMARY KEY,
    joined     TEXT NOT NULL,
    at         TEXT NOT NULL
);
"""


class Cursor(BaseModel):
    """Where a page of decisions ends: the next page starts after this (received_at, event_id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    received_at: AwareDatetime
    event_id: str = Field(min_length=1, max_length=100)


class DecisionFilter(BaseModel):
    """Which decisions, newest first: every filter optional, `before` the keyset cursor of the page."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project: ProjectName | None = None
    action: Action | None = None
    mode: Literal["shadow", "advisory", "autonomous"] | None = None
    state: DecisionState | None = None
    before: Cursor | None = None
    limit: int = Field(default=50, ge=1, le=200)


class DecisionPage(BaseModel):
    decisions: list[Decision]
    more: bool = Field(description="a next page exists (its cursor is the last decision's)")


_STICKY = frozenset({DecisionState.SUPERSEDED, DecisionState.UNKNOWN_APPLICATION})
"""Terminal states nothing after them undoes (a scheduler job recorded late keeps the state)."""


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

    async def accept(self, event: DriftEvent, now: datetime, *, join: bool = True) -> tuple[Decision, bool]:
        """Persist a new event as a `received` decision or, with `join`, join the open decision of the same
        application and revision. Returns (decision, duplicate)."""
        decision = Decision(event=event, state=DecisionState.RECEIVED, updated_at=now)
        async with self._lock:
            await self._begin_immediate()
            try:
                if join:
                    existing = await self._one(
                        "SELECT document FROM drift_decisions WHERE idempotency_key = ? AND open = 1 "
                        "AND json_extract(document, '$.event.notification.revision') = ? "
                        "ORDER BY received_at DESC LIMIT 1",
                        (event.idempotency_key, event.notification.revision),
                    )
                    if existing is not None:
                        await self.db.execute("COMMIT")
                        return existing, True
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
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise

    async def save(self, decision: Decision) -> None:
        """Write a decision's current document; whether it is still open follows from it (open_rule)."""
        async with self._lock:
            current = await self._one("SELECT document FROM drift_decisions WHERE event_id = ?",
                                      (decision.event.event_id,))
            if current is not None and current.state in _STICKY and decision.state != current.state:
                decision = decision.model_copy(update={"state": current.state,
                                                       "superseded_by": current.superseded_by})
            # one statement in autocommit: its own transaction, with the busy handler honoured
            await self.db.execute(
                "UPDATE drift_decisions SET state = ?, open = ?, updated_at = ?, document = ? WHERE event_id = ?",
                (
                    decision.state.value,
                    1 if is_open(decision) else 0,
                    decision.updated_at.isoformat(),
                    decision.model_dump_json(),
                    decision.event.event_id,
                ),
            )

    async def supersede(self, old: Decision, successor: str, now: datetime) -> Decision | None:
        """End `old` as superseded by `successor`, only if its state is still the one it was read in
        (an approval or a run that moved it meanwhile wins); the superseded decision, or None."""
        ended = old.model_copy(update={"state": DecisionState.SUPERSEDED, "superseded_by": successor,
                                       "updated_at": now})
        async with self._lock:
            cur = await self.db.execute(
                "UPDATE drift_decisions SET state = ?, open = 0, updated_at = ?, document = ? "
                "WHERE event_id = ? AND state = ?",
                (ended.state.value, now.isoformat(), ended.model_dump_json(), old.event.event_id, old.state.value),
            )
        return ended if cur.rowcount == 1 else None

    async def join(self, event_id: str, into: str, now: datetime) -> bool:
        """The event `event_id` (still `received`) is the decision `into`: its own row goes, a join row stays."""
        async with self._lock:
            await self._begin_immediate()
            try:
                cur = await self.db.execute(
                    "DELETE FROM drift_decisions WHERE event_id = ? AND state = ?",
                    (event_id, DecisionState.RECEIVED.value))
                if cur.rowcount == 1:
                    await self.db.execute("INSERT INTO drift_joins VALUES (?, ?, ?)", (event_id, into, now.isoformat()))
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        return cur.rowcount == 1

    async def for_application(self, idempotency_key: str, limit: int = 50) -> list[Decision]:
        """An application's decisions, newest first."""
        rows = await self.rows(
            "SELECT document FROM drift_decisions WHERE idempotency_key = ? ORDER BY received_at DESC LIMIT ?",
            (idempotency_key, limit),
        )
        return [Decision.model_validate_json(r[0]) for r in rows]

    async def get(self, event_id: str) -> Decision | None:
        """The decision of an event: its own, or the one it joined."""
        found = await self._one("SELECT document FROM drift_decisions WHERE event_id = ?", (event_id,))
        if found is not None:
            return found
        return await self._one(
            "SELECT d.document FROM drift_joins j JOIN drift_decisions d ON d.event_id = j.joined "
            "WHERE j.event_id = ?", (event_id,))

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
        states = sorted(s.value for s in UNDECIDED)
        rows = await self.rows(
            f"SELECT document FROM drift_decisions WHERE state IN ({', '.join('?' * len(states))}) "
            "ORDER BY received_at", states,
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

    async def page(self, where: DecisionFilter) -> DecisionPage:
        """Decisions newest first, filtered and paged in SQL (keyset on received_at, event_id), so a page
        costs the same with thousands of rows as with ten; one row more than asked says a next page exists."""
        sql = "SELECT document FROM drift_decisions WHERE 1=1"
        args: list[object] = []
        for expr, value in (("json_extract(document, '$.event.notification.project')", where.project),
                            ("json_extract(document, '$.verdict.verdict.action')", where.action),
                            ("json_extract(document, '$.mode')", where.mode), ("state", where.state)):
            if value is not None:
                sql += f" AND {expr} = ?"
                args.append(str(value))
        if where.before is not None:
            sql += " AND (received_at, event_id) < (?, ?)"
            args += [where.before.received_at.isoformat(), where.before.event_id]
        sql += " ORDER BY received_at DESC, event_id DESC LIMIT ?"
        args.append(where.limit + 1)
        found = [Decision.model_validate_json(r[0]) for r in await self.rows(sql, args)]
        return DecisionPage(decisions=found[:where.limit], more=len(found) > where.limit)

    async def awaiting(self, limit: int = 200) -> list[Decision]:
        """The decisions waiting for a human, oldest first (the console's queue)."""
        rows = await self.rows(
            "SELECT document FROM drift_decisions WHERE state = ? ORDER BY received_at, event_id LIMIT ?",
            (DecisionState.AWAITING_APPROVAL.value, limit))
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
