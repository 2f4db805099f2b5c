"""Specialist agents as processes for tests: their keys, a config naming them, and starting one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def start_agent(env: Env, name: str, config: Path | None = None) -> Iterator[Proc]:
    with driftwise(
        "agent", name, "--config", str(config or env.config), name=f"agent-{name}",
        ready_url=f"http://127.0.0.1:{env.ports[name]}/healthz", env=env.env,
    ) as proc:
        yield proc
