"""The PostgreSQL implementation of agents.drift.database.Database: psycopg 3, async, on one pool.

The pool's connections are configured as LangGraph's AsyncPostgresSaver needs them (autocommit, dict rows,
prepare_threshold 0), so the saver shares the pool; the stores ask for tuple rows per cursor. Outside a
transaction a statement commits alone; `transaction(lock=key)` is BEGIN … COMMIT holding
`pg_advisory_xact_lock(hashtext(key))`, which serialises a read-then-write (join-or-insert, the audit head)
across replicas. Migrations run under a session advisory lock (`MIGRATION_LOCK`, taken by polling
pg_try_advisory_lock), so replicas starting together apply each one once; the checkpointer's own `setup()`
runs under the same lock.

Errors: an unreachable server or an exhausted pool is `StoreUnavailable` (a StoreError the runner retries);
SQL errors (a constraint, an append-only trigger) propagate as psycopg raised them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agents.drift.database import Database, StoreUnavailable, Tx
from agents.drift.migrations import apply_pending

MIGRATION_LOCK = 0x44726966  # "Drif": the session advisory lock every replica takes to migrate
MIGRATION_POLL_S = 0.05


def _sql(sql: str) -> str:
    """Our statements use SQLite's `?` placeholders; psycopg's are `%s` (no statement of ours has a `%`)."""
    return sql.replace("?", "%s")


def redacted(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _PgTx(Tx):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        cur = await self._conn.execute(_sql(sql), tuple(args))
        return cur.rowcount

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(_sql(sql), tuple(args))
            return await cur.fetchall()


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, pool: AsyncConnectionPool, where: str, migrate_timeout_s: float = 120.0) -> None:
        self.pool = pool
        self.where = where
        self._migrate_timeout_s = migrate_timeout_s

    @classmethod
    async def open(cls, dsn: str, *, max_size: int = 10, timeout_s: float = 10.0) -> PostgresDatabase:
        where = redacted(dsn)
        pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=max_size, timeout=timeout_s, open=False, name="driftwise-state",
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        try:
            await pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot reach the state database {where} within {timeout_s}s: {exc}") from exc
        return cls(pool, where)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(f"the state database {self.where} had no free connection: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the state database {self.where} failed: {exc}") from exc

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        async with self._connection() as conn:
            return await _PgTx(conn).execute(sql, args)

    async def rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            return await _PgTx(conn).rows(sql, args)

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Tx]:
        async with self._connection() as conn, conn.transaction():
            if lock is not None:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            yield _PgTx(conn)

    def json_text(self, column: str, *path: str) -> str:
        return f"(({column})::jsonb #>> '{{{','.join(path)}}}')"

    def epoch_now(self) -> str:
        return "extract(epoch from clock_timestamp())::double precision"

    def skip_locked(self, table: str) -> str:
        return f" FOR UPDATE OF {table} SKIP LOCKED"

    async def migrate(self, then: Callable[[], Awaitable[None]] | None = None) -> int:
        """Apply what is missing under the migration lock; `then` (the checkpointer's setup) runs under it too."""
        async with self._connection() as conn:
            await self._take_migration_lock(conn)
            try:
                async with conn.transaction():
                    # migration statements go to psycopg as written, without _PgTx's `?` -> `%s` rewriting (as before)
                    applied = await apply_pending(_PgTx(conn), "postgres", self.where, conn.execute)
                if then is not None:
                    await then()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        return applied

    async def _take_migration_lock(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Try, not wait: a session blocked in pg_advisory_lock is a running statement, and the checkpointer's
        CREATE INDEX CONCURRENTLY (run under the lock) waits for every running statement: a deadlock."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self._migrate_timeout_s
        while True:
            got = await _PgTx(conn).row("SELECT pg_try_advisory_lock(?)", (MIGRATION_LOCK,))
            if got is not None and got[0]:
                return
            if loop.time() >= until:
                raise StoreUnavailable(f"another process held the migration lock of {self.where} for more than "
                                       f"{self._migrate_timeout_s}s")
            await asyncio.sleep(MIGRATION_POLL_S)

    async def close(self) -> None:
        await self.pool.close()


__all__ = ["MIGRATION_LOCK", "PostgresDatabase", "redacted"]
