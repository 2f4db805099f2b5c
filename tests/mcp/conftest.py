"""One sandbox and the four MCP servers as real processes, started once for the tests in this folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.support.mcp_stack import Stack, backend_env, start_servers
from tests.support.processes import SCENARIOS, driftwise, free_port_block, http_ok, wait_until
from tests.support.sandbox_clients import CRD_SCENARIOS


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """The sandbox (builtin Prometheus) and the four MCP servers over streamable HTTP."""
    base = free_port_block(5)
    with tempfile.TemporaryDirectory() as state, ExitStack() as processes:
        sandbox = processes.enter_context(driftwise(
            "sandbox", str(SCENARIOS), str(CRD_SCENARIOS), "--port", str(base), "--prometheus", "builtin",
            name="sandbox", env={"DRIFTWISE_STATE_DIR": state},
        ))
        endpoints = start_servers(processes, backend_env(base, state))
        ready = f"http://127.0.0.1:{base}/sandbox/healthz"
        wait_until(http_ok(ready), 30, f"sandbox ready at {ready}", sandbox)
        yield Stack(sandbox_base=base, endpoints=endpoints)
