"""The drift agent's state opened to read only (`driftwise report --state`): never migrated, never written.

SQLite: the file opened with `mode=ro` (a missing file is an error, never a new empty one; no journal mode is
set). PostgreSQL: every connection with `default_transaction_read_only=on`, so even a mistaken write fails.
The schema must be exactly the one this code reads: a newer one (a newer Driftwise migrated it) or an older
one (migrations pending: the drift agent applies them at start-up) is one line, `SchemaMismatch`, and the
state stays as it was.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from agents.drift.database import Database, SchemaTooNew
from agents.drift.errors import StoreError
from agents.drift.migrations import LATEST, check_known
from agents.drift.outcome_store import OutcomeStore
from agents.drift.store import EventStore
from protocol.models import Decision

READ_ONLY = "-c default_transaction_read_only=on"


class SchemaMismatch(StoreError):
    """The state's schema is not the one this Driftwise reads, and reading never migrates it."""

    kind = "schema_mismatch"


@dataclass(frozen=True)
class ReadOnlyState:
    events: EventStore
    outcomes: OutcomeStore
    where: str

    async def decisions(self, limit: int) -> list[Decision]:
        """The newest `limit` decisions, each with its outcome; a document this code cannot read is one line."""
        from pydantic import ValidationError

        from agents.drift.outcome_tracker import with_outcomes

        try:
            return await with_outcomes(self.outcomes, await self.events.list(limit=limit))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SchemaMismatch(f"a record in the state {self.where} does not read as this Driftwise's model "
                                 f"({where}: {first['msg']}): another Driftwise version wrote it") from exc


def read_only_dsn(dsn: str) -> str:
    """The DSN with `default_transaction_read_only=on` added to its libpq `options`."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join([*(v for k, v in query if k == "options"), READ_ONLY])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


async def _open_sqlite(path: Path) -> Database:
    import aiosqlite

    from agents.drift.sqlite import BUSY_TIMEOUT_MS, SqliteDatabase

    absolute = await asyncio.to_thread(lambda: path.resolve() if path.is_file() else None)
    if absolute is None:
        raise StoreError(f"no state at {path}: pass --db FILE (the drift agent's drift.sqlite), or set state_dir")
    try:
        conn = await aiosqlite.connect(f"file:{quote(str(absolute))}?mode=ro", uri=True, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except (OSError, aiosqlite.Error) as exc:
        raise StoreError(f"cannot open the state {path} to read: {exc}") from exc
    return SqliteDatabase(conn, path)


async def _open_postgres(dsn: str, timeout_s: float) -> Database:
    from agents.drift.postgres import PostgresDatabase, redacted

    db = await PostgresDatabase.open(read_only_dsn(dsn), max_size=2, timeout_s=timeout_s)
    db.where = redacted(dsn)
    return db


async def _check_schema(db: Database) -> None:
    import psycopg

    try:
        row = await db.row("SELECT max(version) FROM schema_migrations")
    except (sqlite3.DatabaseError, psycopg.errors.UndefinedTable) as exc:
        raise SchemaMismatch(f"the state {db.where} has no schema version (no schema_migrations table): not a "
                             "Driftwise state, or one no drift agent has opened yet") from exc
    found = int(row[0]) if row and row[0] is not None else 0
    try:
        check_known(found, db.where)
    except SchemaTooNew as exc:
        raise SchemaMismatch(str(exc)) from exc
    if found < LATEST:
        raise SchemaMismatch(f"the state {db.where} has schema version {found}, older than this Driftwise reads "
                             f"({LATEST}): start the drift agent on it once (it migrates at start-up); the report "
                             "never migrates")


@asynccontextmanager
async def read_only_state(dsn: str | None, db_path: Path, timeout_s: float = 10.0) -> AsyncIterator[ReadOnlyState]:
    """The event and outcome stores over the state (`dsn` None: the SQLite file `db_path`), read only."""
    db = await (_open_sqlite(db_path) if dsn is None else _open_postgres(dsn, timeout_s))
    try:
        await _check_schema(db)
        yield ReadOnlyState(EventStore(db), OutcomeStore(db), db.where)
    finally:
        await db.close()
