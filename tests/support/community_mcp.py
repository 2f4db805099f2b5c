"""The community MCP servers (installed by scripts/community-mcp.sh) as settings for a Driftwise system over a
sandbox: each runs as the stdio child of the agent that reads through it, pointed at the sandbox's backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.binaries import IN_CI
from tests.support.processes import ROOT

INSTALL_DIR = Path(os.environ.get("COMMUNITY_MCP_DIR", ROOT / ".community-mcp"))
BINARIES = {
    "kubernetes-mcp-server": INSTALL_DIR / "npm" / "node_modules" / ".bin" / "kubernetes-mcp-server",
    "mcp-grafana": INSTALL_DIR / "mcp-grafana" / "bin" / "mcp-grafana",
    "prometheus-mcp-server": INSTALL_DIR / "prometheus-mcp-server" / "bin" / "prometheus-mcp-server",
    "pagerduty-mcp": INSTALL_DIR / "pagerduty-mcp" / "bin" / "pagerduty-mcp",
}
OPTIONAL = frozenset({"pagerduty-mcp"})
"""Needs Python >= 3.12, which a machine may not have: tested when installed."""


def installed() -> list[str]:
    """The community servers present; in CI a missing required one fails the test, elsewhere it skips."""
    missing = [name for name, path in BINARIES.items() if not path.exists() and name not in OPTIONAL]
    if missing:
        message = f"community MCP servers not installed: {', '.join(missing)} (run scripts/community-mcp.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [name for name, path in BINARIES.items() if path.exists()]


def version(name: str) -> str:
    marker = INSTALL_DIR / ("npm" if name == "kubernetes-mcp-server" else name) / ".installed"
    return marker.read_text().strip() if marker.exists() else "?"


def kubeconfig(path: Path, kube_url: str, token: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: sandbox, cluster: {{server: \"{kube_url}\"}}}}]\n"
        f"users: [{{name: driftwise, user: {{token: {token}}}}}]\n"
        "contexts: [{name: sandbox, context: {cluster: sandbox, user: driftwise}}]\ncurrent-context: sandbox\n"
    )
    return path


def mcp_settings(names: list[str], settings: Any, state: Path) -> dict[str, Any]:
    """mcp.servers and mcp.use for `names`, reading the backends `settings` points at (the sandbox)."""
    servers: dict[str, Any] = {}
    use: dict[str, str] = {}
    if "kubernetes-mcp-server" in names:
        config = kubeconfig(state / "kubeconfig", settings.kubernetes.url, settings.kubernetes.token.get_secret_value())
        servers["k8s"] = {"command": str(BINARIES["kubernetes-mcp-server"]),
                          "args": ["--read-only", "--disable-multi-cluster", "--list-output", "yaml",
                                   "--kubeconfig", str(config)], "env": {"HOME": str(state)}}
        use["kubernetes-mcp-server"] = "k8s"
    if "prometheus-mcp-server" in names:
        servers["prom"] = {"command": str(BINARIES["prometheus-mcp-server"]),
                           "env": {"PROMETHEUS_URL": settings.prometheus.url}}
        use["prometheus-mcp-server"] = "prom"
    if "mcp-grafana" in names:
        servers["graf"] = {"command": str(BINARIES["mcp-grafana"]), "args": ["--disable-write"],
                           "env": {"GRAFANA_URL": settings.grafana.url,
                                   "GRAFANA_SERVICE_ACCOUNT_TOKEN": settings.grafana.token.get_secret_value()}}
        use["mcp-grafana"] = "graf"
    if "pagerduty-mcp" in names:
        servers["pd"] = {"command": str(BINARIES["pagerduty-mcp"]),
                         "env": {"PAGERDUTY_API_HOST": settings.pagerduty.url,
                                 "PAGERDUTY_USER_API_KEY": settings.pagerduty.token.get_secret_value()}}
        use["pagerduty-mcp"] = "pd"
    return {"servers": servers, "use": use}
