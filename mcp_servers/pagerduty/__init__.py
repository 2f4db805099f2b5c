"""MCP server over PagerDuty's REST API v2: incidents, incident."""

from mcp_servers.pagerduty.server import PagerDutyServerConfig, build_server

__all__ = ["PagerDutyServerConfig", "build_server"]
