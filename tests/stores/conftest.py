"""Every case in tests/stores runs against both backends: SQLite (a file) and PostgreSQL (a private cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.drift.config import StateConfig
from agents.drift.database import Database
from agents.drift.postgres import PostgresDatabase
from agents.drift.sqlite import SqliteDatabase
from tests.support.postgres import PgCluster, fresh_dsn

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def state_config(backend: str, request: pytest.FixtureRequest) -> StateConfig:
    """The `state` configuration of a fresh state: unset (SQLite in tmp_path), or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return StateConfig()
    from pydantic import SecretStr

    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return StateConfig(dsn=SecretStr(await fresh_dsn(cluster)))


@pytest.fixture
async def db(state_config: StateConfig, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database of the backend under test."""
    database: Database
    if state_config.dsn is None:
        database = await SqliteDatabase.open(tmp_path / "drift.sqlite")
    else:
        database = await PostgresDatabase.open(state_config.dsn.get_secret_value())
    try:
        await database.migrate()
        yield database
    finally:
        await database.close()


async def fail_on(db: Database, table: str, op: str) -> None:
    """A trigger that aborts every `op` on `table` with 'injected': an error at the SQL level, in-process."""
    if db.dialect == "sqlite":
        await db.execute(f"CREATE TRIGGER inject_{table}_{op} BEFORE {op} ON {table} "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END")
        return
    await db.execute("CREATE OR REPLACE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'injected'; END $$")
    await db.execute(f"CREATE TRIGGER inject_{table}_{op} BEFORE {op} ON {table} "
                     "FOR EACH ROW EXECUTE FUNCTION inject()")
