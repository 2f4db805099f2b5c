"""Sandbox fixtures: an in-process sandbox (ASGI clients, fast) over the visible scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.sandbox_clients import Clients, in_process_sandbox


@pytest.fixture
async def sb() -> AsyncIterator[Clients]:
    async with in_process_sandbox() as clients:
        yield clients
