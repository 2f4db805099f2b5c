"""The report's tests run against both backends where they read a state: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.drift.report_page import render_page
from protocol.report import AgreementReport
from tests.report.states import State, fill, week
from tests.report.week import week_report
from tests.support.postgres import PgCluster, fresh_dsn


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
    asyncio.run(fill(made, week()))
    yield made


@pytest.fixture(scope="session")
def week_page() -> tuple[AgreementReport, str]:
    """The hand-made week's report and its page, rendered once for the page tests."""
    report = week_report()
    return report, render_page(report)
