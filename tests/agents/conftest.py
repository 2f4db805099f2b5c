"""Fixtures: keys in a temp state dir, a settings file, and the security + compliance agents as real processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from protocol.signing import TrustStore, generate_key, write_key_pair
from tests.support.processes import Proc, driftwise, free_port

TOKENS = {"security": "sec-token-test", "compliance": "comp-token-test"}
AGENTS = ("security", "compliance", "cost")


@dataclass
class Env:
    state: Path
    config: Path
    ports: dict[str, int]
    trust: TrustStore

    def url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.ports[agent]}"

    @property
    def env(self) -> dict[str, str]:
        return {"DRIFTWISE_STATE_DIR": str(self.state)}


def make_keys(state: Path, agents: tuple[str, ...] = AGENTS) -> TrustStore:
    keys = state / "keys"
    trust = TrustStore()
    for agent in agents:
        key = generate_key(agent)
        write_key_pair(key, agent, keys)
        trust.add(agent, key)
    trust.save(keys / "trust.json")
    return trust


def write_config(path: Path, specialists: dict[str, dict], *, delegate_timeout_s: float = 3.0,
                 mcp_kubernetes_port: int | None = None) -> Path:
    doc: dict = {"specialists": specialists, "drift": {"delegate_timeout_s": delegate_timeout_s}}
    if mcp_kubernetes_port is not None:
        doc["mcp"] = {"kubernetes": {"port": mcp_kubernetes_port}}
    path.write_text(yaml.safe_dump(doc))
    return path


def dead_port() -> int:
    """A port nobody listens on (connection refused)."""
    return free_port()


@pytest.fixture(scope="session")
def agents_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    state = tmp_path_factory.mktemp("dw-agents")
    trust = make_keys(state)
    ports = {"security": free_port(), "compliance": free_port()}
    config = write_config(state / "settings.yaml", {
        name: {"module": f"agents.{name}", "port": ports[name], "token": TOKENS[name]} for name in ports
    }, mcp_kubernetes_port=dead_port())
    return Env(state=state, config=config, ports=ports, trust=trust)


def start_agent(env: Env, name: str, config: Path | None = None) -> Iterator[Proc]:
    with driftwise(
        "agent", name, "--config", str(config or env.config), name=f"agent-{name}",
        ready_url=f"http://127.0.0.1:{env.ports[name]}/healthz", env=env.env,
    ) as proc:
        yield proc


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
