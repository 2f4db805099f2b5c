"""The drift agent's tests' own fixture: the re-read tests' event store (the sandbox process and the stack
of processes come from tests/support/process_fixtures.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.drift.store import EventStore
from tests.support.reread_fakes import decided_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """One done decision of application `api` (replicas 3 -> 8)."""
    async with decided_store(tmp_path / "drift.sqlite") as s:
        yield s
