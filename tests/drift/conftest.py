"""Shared fixtures of the drift agent's tests: a sandbox process on dynamic ports, and (for the re-read end to
end) the acting tests' stack of processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agents.drift.store import EventStore
from tests.support.acting_stack import Stack, start_stack
from tests.support.e2e import SandboxProc, sandbox_process
from tests.support.reread_fakes import decided_store


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProc]:
    with sandbox_process() as running:
        yield running


@pytest.fixture(scope="module")
def stack(sandbox: SandboxProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(sandbox, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """The re-read tests' event store: one done decision of application `api` (replicas 3 -> 8)."""
    async with decided_store(tmp_path / "drift.sqlite") as s:
        yield s
