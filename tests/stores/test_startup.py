"""The drift agent process at start-up: a state database migrated by a newer Driftwise stops it with one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from agents.drift.migrations import LATEST
from driftwise.cli import app


def test_a_newer_schema_stops_the_drift_agent_with_one_line(tmp_path: Path, isolated_env: None) -> None:
    runner = CliRunner()
    keys = runner.invoke(app, ["keys", "generate", "--agent", "drift", "--out", str(tmp_path / "keys"),
                               "--trust", str(tmp_path / "keys" / "trust.json")])
    assert keys.exit_code == 0, keys.output
    with sqlite3.connect(tmp_path / "drift.sqlite") as db:  # as a newer Driftwise would have left it
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "applied_at TEXT NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', '2027-01-01')", (LATEST + 1,))
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}\ndrift:\n  webhook_token: w\n  approvals_token: a\n"
                      "  sandbox_clock_url: null\n"
                      "specialists:\n  security: {token: s}\n  compliance: {token: c}\n")
    result = runner.invoke(app, ["agent", "drift", "--port", "0", "--config", str(config)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert f"schema version {LATEST + 1}" in lines[0] and f"knows ({LATEST})" in lines[0]
