"""How the drift agent opens its SQLite files: one place for durability and contention settings.

WAL with synchronous=NORMAL: a commit survives any crash of the process (kill -9 included: it is in
the WAL, which the OS holds); only an OS crash or power loss can drop the newest commits, the
crash the outbox and the hash-chain head are built to survive. FULL would fsync every commit
(~4.5 ms on this kind of disk) on a decision's critical path. busy_timeout lets the event store,
audit log, acting store and checkpoints (separate connections) wait for each other's writes.

Reads go through `rows`/`row` (aiosqlite's execute_fetchall: the statement is stepped to its end in
one call). A SELECT left active between `execute` and `fetch*` holds a read snapshot on its
connection; another coroutine's write on that connection then has to upgrade a stale snapshot, and
SQLite answers `database is locked` at once, without the busy timeout — the cause of the lock errors
measured under a 200-event burst at concurrency 32.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self

import aiosqlite

BUSY_TIMEOUT_MS = 30_000


async def connect(path: Path, *, autocommit: bool = True) -> aiosqlite.Connection:
    """Open `path` (creating its folder); `autocommit` leaves transactions to explicit BEGINs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await (aiosqlite.connect(path, isolation_level=None) if autocommit else aiosqlite.connect(path))
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db


class SqliteFile:
    """One of the drift agent's SQLite files: opened with `connect`, its schema applied, closed once.

    A subclass names its SCHEMA, what it is (WHAT, for messages) and the ERROR it raises."""

    SCHEMA: ClassVar[str]
    WHAT: ClassVar[str]
    ERROR: ClassVar[type[Exception]]

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        try:
            self._db = await connect(self.db_path)
            await self._db.executescript(self.SCHEMA)
        except (OSError, aiosqlite.Error) as exc:
            raise self.ERROR(f"cannot open {self.WHAT} {self.db_path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise self.ERROR(f"{self.WHAT} is not open: call open() first")
        return self._db

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """All rows of a query, fetched in one call (no statement left active on the connection)."""
        return list(await self.db.execute_fetchall(sql, tuple(args)))

    async def row(self, sql: str, args: Iterable[Any] = ()) -> Any | None:
        found = await self.rows(sql, args)
        return found[0] if found else None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
