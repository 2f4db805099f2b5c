"""Fixtures: keys in a temp state dir, a settings file, and the security + compliance agents as real processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.agents import TOKENS, Env, dead_port, make_keys, start_agent, write_config
from tests.support.processes import Proc, free_port


@pytest.fixture(scope="session")
def agents_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    state = tmp_path_factory.mktemp("dw-agents")
    trust = make_keys(state)
    ports = {"security": free_port(), "compliance": free_port()}
    config = write_config(state / "settings.yaml", {
        name: {"module": f"agents.{name}", "port": ports[name], "token": TOKENS[name]} for name in ports
    }, mcp_kubernetes_port=dead_port())
    return Env(state=state, config=config, ports=ports, trust=trust)


@pytest.fixture(scope="session")
def compliance_agent(agents_env: Env) -> Iterator[Proc]:
    yield from start_agent(agents_env, "compliance")


@pytest.fixture(scope="session")
def security_agent(agents_env: Env, compliance_agent: Proc) -> Iterator[Proc]:
    yield from start_agent(agents_env, "security")


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung peer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]
