"""`driftwise report --state` reads the state itself, on SQLite and on PostgreSQL: read only (a write through
its connection fails), never migrating (a state of another schema version is one line and stays as it was),
and its report is the one the drift agent would serve from the same decisions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.drift.migrations import LATEST
from agents.drift.state_reader import SchemaMismatch, read_only_dsn, read_only_state
from driftwise.cli import app
from tests.report.states import State


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
