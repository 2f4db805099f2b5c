from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.drift.guardrail import RegoEngine, default_policy_dir
from tests.guardrail.support import Keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="session")
def engine() -> Iterator[RegoEngine]:
    e = RegoEngine(default_policy_dir())
    yield e
    e.close()
