"""The four MCP servers as processes over a sandbox, for the MCP tests."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from agents.kit.mcp_pool import McpEndpoint
from tests.support.processes import driftwise, free_port, http_ok, wait_until

SERVERS = ("prometheus", "grafana", "pagerduty", "kubernetes")
TOKEN = "test-mcp-token"


@dataclass
class Stack:
    sandbox_base: int
    endpoints: dict[str, McpEndpoint]

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_base}/sandbox"

    def activate(self, scenario_id: str) -> None:
        response = httpx.post(f"{self.control}/scenarios/activate", json={"id": scenario_id}, timeout=10)
        assert response.status_code == 200, response.text


def backend_env(base: int, state_dir: str) -> dict[str, str]:
    """Settings that point Driftwise processes at a sandbox whose base port is `base`."""
    return {
        "DRIFTWISE_STATE_DIR": state_dir,
        "DRIFTWISE_KUBERNETES__URL": f"http://127.0.0.1:{base + 1}",
        "DRIFTWISE_PROMETHEUS__URL": f"http://127.0.0.1:{base + 2}",
        "DRIFTWISE_GRAFANA__URL": f"http://127.0.0.1:{base + 3}",
        "DRIFTWISE_PAGERDUTY__URL": f"http://127.0.0.1:{base + 4}",
    }


def start_servers(
    stack: ExitStack, env: dict[str, str], names: tuple[str, ...] = SERVERS, *, token: str | None = TOKEN
) -> dict[str, McpEndpoint]:
    """Start the servers side by side (each start is mostly imports), then wait for each to be ready.

    `token=None` serves them with `--no-auth` (for suites that cannot send headers), on loopback.
    """
    endpoints, started = {}, []
    for name in names:
        port = free_port()
        # A section set from the environment needs all its required fields, the port included.
        own = {f"DRIFTWISE_MCP__{name.upper()}__PORT": str(port)}
        auth = ["--no-auth"] if token is None else []
        if token is not None:
            own[f"DRIFTWISE_MCP__{name.upper()}__TOKEN"] = token
        proc = stack.enter_context(
            driftwise("mcp", name, "--transport", "http", "--host", "127.0.0.1", *auth, name=f"mcp-{name}",
                      env={**env, **own})
        )
        started.append((proc, f"http://127.0.0.1:{port}/healthz"))
        endpoints[name] = McpEndpoint(url=f"http://127.0.0.1:{port}/mcp", token=token)
    for proc, ready in started:
        wait_until(http_ok(ready), 30, f"{proc.name} ready at {ready}", proc)
    return endpoints
