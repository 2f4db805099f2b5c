"""MCP server over Grafana's HTTP API: annotations, search_dashboards."""

from mcp_servers.grafana.server import GrafanaServerConfig, build_server

__all__ = ["GrafanaServerConfig", "build_server"]
