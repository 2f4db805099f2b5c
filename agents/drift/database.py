"""The drift agent's state behind one interface: a Database (SQLite or PostgreSQL) and the stores on it.

Two implementations of `Database`, one per backend:
- `agents.drift.sqlite.SqliteDatabase`: one aiosqlite connection to a file in `state_dir` (the default:
  `up` and `demo` need no database server);
- `agents.drift.postgres.PostgresDatabase`: a psycopg 3 async pool, shared by every store of the process
  and by LangGraph's AsyncPostgresSaver (`state.dsn = postgresql://…`), so that replicas share one state.

A store (events and decisions, outbox and jobs, audit, replay cache, outcomes) is one `Store` subclass:
its methods are its interface, written once in SQL both backends run (`?` placeholders, `ON CONFLICT`),
with the few dialect differences asked of the Database (`json_text`), or one statement per `dialect`
where no shared form exists (the outcome store's walk over a JSON array). Its tables come from one versioned list of
migrations (agents.drift.migrations), applied at start-up (under an advisory lock on PostgreSQL); a
schema newer than the code stops the process with one line (`SchemaTooNew`).

Adding a store (as agents.drift.outcome_store was added):
1. append a `Migration` to agents.drift.migrations.MIGRATIONS with its tables, in both dialects;
2. write `class NewStore(Store)` with `WHAT`/`ERROR` and methods over `self.rows` / `self.execute` /
   `self.transaction()`;
3. open it in agents.drift.state.open_state (both backends) and add its cases to tests/stores/, which
   run every case against both backends.

A transaction (`async with store.transaction(lock=key) as tx`) is BEGIN IMMEDIATE on SQLite (the file's
one writer) and a transaction holding `pg_advisory_xact_lock(key)` on PostgreSQL, so that a read-then-write
(join or insert, the audit head) is serialised across replicas the way SQLite serialises it across
processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from agents.drift.errors import StoreError

Dialect = Literal["sqlite", "postgres"]


class SchemaTooNew(StoreError):
    """The database was migrated by a newer Driftwise than this one: stop rather than misread it."""

    kind = "schema_too_new"


class StoreUnavailable(StoreError):
    """The database cannot be reached or its pool is exhausted (a load-caused failure, retried)."""

    kind = "database_busy"


class Tx(ABC):
    """Statements inside one transaction."""

    @abstractmethod
    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query."""

    async def row(self, sql: str, args: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        found = await self.rows(sql, args)
        return found[0] if found else None


class Database(Tx):
    """One backend. Outside `transaction()` every statement is its own transaction."""

    dialect: ClassVar[Dialect]
    where: str
    """What it is, for messages (a file path, or a DSN without its password)."""

    @abstractmethod
    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Tx]:
        """A write transaction; with `lock`, serialised with every other transaction taking the same lock."""

    @abstractmethod
    def json_text(self, column: str, *path: str) -> str:
        """SQL for the text at `path` inside the JSON document held in `column`."""

    @abstractmethod
    def epoch_now(self) -> str:
        """SQL for the database server's clock in seconds since the epoch: leases and job claims are judged on
        one clock (the database's), so replicas whose clocks drift apart still agree on what has expired."""

    @abstractmethod
    def skip_locked(self, table: str) -> str:
        """The suffix that makes a SELECT claim the rows of `table` (its alias) no other transaction holds
        (`FOR UPDATE OF … SKIP LOCKED` on PostgreSQL); empty on SQLite, where BEGIN IMMEDIATE makes the one writer."""

    @abstractmethod
    async def migrate(self, then: Callable[[], Awaitable[None]] | None = None) -> int:
        """Apply the migrations this database lacks (how many), then `then` (a checkpointer's own setup),
        serialised with every other process migrating the same database. Raises SchemaTooNew."""

    @abstractmethod
    async def close(self) -> None: ...


class Store:
    """One store on a Database: shared (given one) or its own SQLite file (given a path, opened and
    migrated by `open`). A subclass names what it is (WHAT, for messages) and the ERROR it raises."""

    WHAT: ClassVar[str]
    ERROR: ClassVar[type[Exception]]

    def __init__(self, source: Path | Database) -> None:
        self._source = source
        self._db: Database | None = source if isinstance(source, Database) else None

    @property
    def db_path(self) -> Path | None:
        return self._source if isinstance(self._source, Path) else None

    async def open(self) -> None:
        if not isinstance(self._source, Path):
            return
        from agents.drift.sqlite import SqliteDatabase

        try:
            db = await SqliteDatabase.open(self._source)
        except StoreError as exc:
            raise self.ERROR(f"cannot open {self.WHAT} {self._source}: {exc}") from exc
        try:
            await db.migrate()
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        """Closes the SQLite file it opened; a shared Database is closed by whoever opened it."""
        if isinstance(self._source, Path) and self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise self.ERROR(f"{self.WHAT} is not open: call open() first")
        return self._db

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        return await self.db.execute(sql, args)

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.db.rows(sql, args)

    async def row(self, sql: str, args: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        return await self.db.row(sql, args)

    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Tx]:
        return self.db.transaction(lock)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def batched(db: Tx, sql: str, args: tuple[Any, ...], key_index: int, size: int = 1000
                  ) -> AsyncIterator[tuple[Any, ...]]:
    """Rows of `sql` (which ends `WHERE <key> > ? ORDER BY <key> LIMIT ?`) page by page, without holding
    a statement open between pages (a stream over either backend)."""
    last: Any = -1
    while True:
        page = await db.rows(sql, (*args, last, size))
        for r in page:
            yield r
        if len(page) < size:
            return
        last = page[-1][key_index]
