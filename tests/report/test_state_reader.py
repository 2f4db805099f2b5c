"""`driftwise report --state` reads the state itself, on SQLite and on PostgreSQL: read only (a write through
its connection fails), never migrating (a state of another schema version is one line and stays as it was),
and its report is the one the drift agent would serve from the same decisions."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.drift.database import Database
from agents.drift.migrations import LATEST
from agents.drift.outcome_store import OutcomeStore
from agents.drift.postgres import PostgresDatabase
from agents.drift.sqlite import SqliteDatabase
from agents.drift.state_reader import SchemaMismatch, read_only_dsn, read_only_state
from agents.drift.store import EventStore
from driftwise.cli import app
from protocol.models import Decision
from tests.report.decisions import HOUR, A, G, K, decision
from tests.support.postgres import PgCluster, fresh_dsn

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


def _week() -> list[Decision]:
    return [decision(A.ENFORCE, K.REVERTED, G.AGREES, specialists={"security": A.ENFORCE}),
            decision(A.ENFORCE, K.ADOPTED, G.DISAGREES, specialists={"security": A.ALLOW}),
            decision(A.ALLOW, K.REVERTED, G.POSSIBLY_UNSAFE, after=HOUR / 4),
            decision(A.DEFER)]


async def _fill(state: State, decisions: list[Decision]) -> None:
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


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path, isolated_env: None) -> Iterator[State]:
    dsn = None
    config = tmp_path / "c.yaml"
    text = f"state_dir: {tmp_path}\n"
    if request.param == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        dsn = asyncio.run(fresh_dsn(cluster))
        text += f"state:\n  dsn: {dsn}\n"
    config.write_text(text)
    made = State(dsn, tmp_path / "drift.sqlite", config)
    asyncio.run(_fill(made, _week()))
    yield made


def _report(state: State, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", "--state", "--since", "7d", "--config", str(state.config), *args])
    return result.exit_code, result.output


def test_the_report_reads_the_state_read_only_and_changes_nothing(state: State, tmp_path: Path) -> None:
    before = state.fingerprint()
    code, out = _report(state, "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"))
    assert code == 0, out
    assert "enforce     50% of 2 judged (2 decided" in out, out
    assert "security      100% of 2 judged (2 answers, 0 abstentions)" in out, out
    assert out.strip().splitlines()[-1].startswith("project prod: stay in shadow; before advisory: "), out
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert state.fingerprint() == before

    async def write_through_it() -> None:
        async with read_only_state(state.dsn, state.path) as found:
            assert len(await found.decisions(100)) == 4
            await found.events.execute("DELETE FROM drift_outcomes")

    with pytest.raises(Exception, match=r"(?i)read-only|readonly") as caught:
        asyncio.run(write_through_it())
    assert not isinstance(caught.value, SchemaMismatch)
    assert state.fingerprint() == before


def test_a_newer_schema_is_one_line_and_the_state_stays_as_it_was(state: State) -> None:
    asyncio.run(state.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', "
                          "'2027-01-01')", (LATEST + 1,)))
    before = state.fingerprint()
    code, out = _report(state)
    assert code == 2
    (line,) = out.strip().splitlines()
    assert f"has schema version {LATEST + 1}, newer than this Driftwise knows ({LATEST})" in line, line
    assert state.fingerprint() == before


def test_an_older_schema_is_one_line_and_is_not_migrated(state: State) -> None:
    asyncio.run(state.run("DELETE FROM schema_migrations WHERE version = ?", (LATEST,)))
    before = state.fingerprint()
    code, out = _report(state)
    assert code == 2
    (line,) = out.strip().splitlines()
    assert f"has schema version {LATEST - 1}, older than this Driftwise reads ({LATEST})" in line, line
    assert "never migrates" in line
    assert state.fingerprint() == before
    assert asyncio.run(state.run("SELECT max(version) FROM schema_migrations")) == [(LATEST - 1,)]


def test_a_record_of_another_schema_and_a_missing_state_are_one_line(state: State, tmp_path: Path) -> None:
    asyncio.run(state.run("UPDATE drift_decisions SET document = replace(document, '\"schema_version\":\"1\"', "
                          "'\"schema_version\":\"2\"')"))
    code, out = _report(state)
    assert code == 2
    (line,) = out.strip().splitlines()
    assert "does not read as this Driftwise's model" in line and "schema_version" in line, line
    if state.dsn is None:
        code, out = _report(state, "--db", str(tmp_path / "nothing.sqlite"))
        assert code == 2 and "no state at" in out and not (tmp_path / "nothing.sqlite").exists(), out
        (tmp_path / "junk.sqlite").write_text("not a database")
        code, out = _report(state, "--db", str(tmp_path / "junk.sqlite"))
        assert code == 2 and "no schema version" in out, out


def test_the_read_only_option_joins_any_options_the_dsn_already_has() -> None:
    plain = read_only_dsn("postgresql://u:p@db:5432/drift")
    assert plain == "postgresql://u:p@db:5432/drift?options=-c%20default_transaction_read_only%3Don"
    joined = read_only_dsn("postgresql://u:p@db/drift?sslmode=require&options=-c%20search_path%3Dx")
    assert joined.endswith("?sslmode=require&options=-c%20search_path%3Dx%20-c%20default_transaction_read_only%3Don")
    assert sqlite3.sqlite_version_info >= (3, 22)  # a read-only connection opens a WAL file (SQLite 3.22+)
