"""How the drift agent opens its SQLite files: one place for durability and contention settings.

WAL with synchronous=NORMAL: a commit survives any crash of the process (kill -9 included: it is in
the WAL, which the OS holds); only an OS crash or power loss can drop the newest commits, the
crash the outbox and the hash-chain head are built to survive. FULL would fsync every commit
(~4.5 ms on this kind of disk) on a decision's critical path. busy_timeout lets the event store,
audit log, acting store and checkpoints (separate connections) wait for each other's writes.

`SqliteDatabase` is the SQLite implementation of agents.drift.database.Database. Reads go through
`rows`/`row` (aiosqlite's execute_fetchall: the statement is stepped to its end in one call).
A SELECT left active between `execute` and `fetch*` holds a read snapshot on its connection; another
coroutine's write on that connection then has to upgrade a stale snapshot, and
SQLite answers `database is locked` at once, without the busy timeout — the cause of the lock errors
measured under a 200-event burst at concurrency 32.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from agents.drift.database import Database, SchemaTooNew, Tx
from agents.drift.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


async def connect(path: Path, *, autocommit: bool = True) -> aiosqlite.Connection:
    """Open `path` (creating its folder); `autocommit` leaves transactions to explicit BEGINs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await (aiosqlite.connect(path, isolation_level=None) if autocommit else aiosqlite.connect(path))
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # switching a new file to WAL takes its exclusive lock, and SQLite answers "locked" at once
        # (no busy handler) when replicas open the same new file together
        await _while_locked(lambda: db.execute("PRAGMA journal_mode=WAL"), str(path))
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db


async def _while_locked(step: Callable[[], Awaitable[Any]], where: str, attempts: int = 8) -> None:
    """Run `step`, again with a growing pause while SQLite answers "locked"/"busy" without waiting."""
    for attempt in range(attempts):
        try:
            await step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise StoreError(f"{where} stayed locked: {exc}") from exc
            await asyncio.sleep(0.02 * 2**attempt)


class _SqliteTx(Tx):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._conn = db

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        cur = await self._conn.execute(sql, tuple(args))
        return cur.rowcount

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, fetched in one call (no statement left active on the connection)."""
        return [tuple(r) for r in await self._conn.execute_fetchall(sql, tuple(args))]


class SqliteDatabase(_SqliteTx, Database):
    """One connection to one file. A lock keeps one coroutine's transaction from taking in another's
    statements (they share the connection)."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__(conn)
        self.where = str(path)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        try:
            return cls(await connect(path), path)
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(str(exc)) from exc

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        async with self._lock:
            return await super().execute(sql, args)

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await super().rows(sql, args)

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Tx]:
        # BEGIN IMMEDIATE: the file's one write lock, whatever `lock` names (a deferred transaction that
        # reads then writes fails at once with "database is locked" when another connection wrote between)
        async with self._lock:
            await _while_locked(lambda: self._conn.execute("BEGIN IMMEDIATE"), self.where)
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    def json_text(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def epoch_now(self) -> str:
        return "((julianday('now') - 2440587.5) * 86400.0)"

    def skip_locked(self, table: str) -> str:
        return ""

    async def migrate(self, then: Callable[[], Awaitable[None]] | None = None) -> int:
        from agents.drift.migrations import apply_pending

        async with self.transaction() as tx:
            applied = await apply_pending(tx, "sqlite", self.where, tx.execute)
        if then is not None:
            await then()
        return applied

    async def close(self) -> None:
        await self._conn.close()


__all__ = ["BUSY_TIMEOUT_MS", "SchemaTooNew", "SqliteDatabase", "connect"]
