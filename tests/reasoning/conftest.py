"""Fixtures of the reasoning tests: the scripted LLM server, one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_llm import Server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server() as s:
        yield s
