"""A filled state for the report's tests, on either backend: SQLite (a file) or PostgreSQL (a private cluster)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.drift.database import Database
from agents.drift.outcome_store import OutcomeStore
from agents.drift.postgres import PostgresDatabase
from agents.drift.sqlite import SqliteDatabase
from agents.drift.store import EventStore
from protocol.models import Decision
from tests.report.decisions import HOUR, A, G, K, decision

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class State:
    dsn: str | None
    path: Path
    config: Path

    async def open(self) -> Database:
        if self.dsn is None:
            return await SqliteDatabase.open(self.path)
        return await PostgresDatabase.open(self.dsn)

    async def run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        db = await self.open()
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return await db.rows(sql, args)
            await db.execute(sql, args)
            return []
        finally:
            await db.close()

    def fingerprint(self) -> object:
        """What would show a write: the SQLite file's bytes and an empty WAL (a reader of a WAL file may leave
        the empty -wal and the -shm index beside it); PostgreSQL's versions, tables and rows."""
        if self.dsn is None:
            wal = self.path.with_name(self.path.name + "-wal")
            return hashlib.sha256(self.path.read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0
        return asyncio.run(self._pg_fingerprint())

    async def _pg_fingerprint(self) -> object:
        db = await self.open()
        try:
            return (await db.rows("SELECT version, name FROM schema_migrations ORDER BY version"),
                    await db.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                                  "ORDER BY table_name"),
                    await db.rows("SELECT count(*), max(updated_at) FROM drift_decisions"))
        finally:
            await db.close()


def week() -> list[Decision]:
    return [decision(A.ENFORCE, K.REVERTED, G.AGREES, specialists={"security": A.ENFORCE}),
            decision(A.ENFORCE, K.ADOPTED, G.DISAGREES, specialists={"security": A.ALLOW}),
            decision(A.ALLOW, K.REVERTED, G.POSSIBLY_UNSAFE, after=HOUR / 4),
            decision(A.DEFER)]


async def fill(state: State, decisions: list[Decision]) -> None:
    db = await state.open()
    try:
        await db.migrate()
        events, outcomes = EventStore(db), OutcomeStore(db)
        for d in decisions:
            # decided two days ago on this machine's clock, as the report's --since counts back from it
            shift = NOW - timedelta(days=2) - d.event.received_at
            moved = _shifted(d, shift)
            await events.accept(moved.event, moved.event.received_at, join=False)
            await events.save(moved)
            if moved.outcome is not None:
                await outcomes.record(moved.event.notification.app, moved.outcome)
    finally:
        await db.close()


def _shifted(d: Decision, by: timedelta) -> Decision:
    assert d.verdict is not None
    verdict = d.verdict.model_copy(update={"verdict": d.verdict.verdict.model_copy(
        update={"decided_at": d.verdict.verdict.decided_at + by})})
    event = d.event.model_copy(update={"received_at": d.event.received_at + by})
    outcome = None if d.outcome is None else d.outcome.model_copy(update={
        "decided_at": d.outcome.decided_at + by, "at": d.outcome.at + by})
    return d.model_copy(update={"event": event, "verdict": verdict, "outcome": outcome,
                                "updated_at": d.updated_at + by})
