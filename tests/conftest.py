"""Fixtures every test package may use (helpers shared between modules live in tests/support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.env import clear_driftwise_environment

# the sandbox process and the acting stack (tests/acting, tests/drift); a private PostgreSQL (tests/stores)
pytest_plugins = ["tests.support.process_fixtures", "tests.support.postgres"]


@pytest.fixture
def isolated_env() -> Iterator[None]:
    """The test's settings (and the processes it starts) see none of the caller's DRIFTWISE_* variables."""
    with pytest.MonkeyPatch.context() as mp:
        clear_driftwise_environment(mp)
        yield
