"""Module-scoped fixtures of processes, registered for the whole suite by tests/conftest.py (pytest_plugins):
the sandbox process, and the acting tests' stack over it (tests/acting, tests/drift)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.acting_stack import Stack, start_stack
from tests.support.e2e import SandboxProc, sandbox_process


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProc]:
    with sandbox_process() as running:
        yield running


@pytest.fixture(scope="module")
def stack(sandbox: SandboxProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(sandbox, tmp_path_factory.mktemp("stack")) as running:
        yield running
