"""MCP server over Prometheus's HTTP API: query, query_range, workload_traffic, workload_memory."""

from mcp_servers.prometheus.server import PrometheusServerConfig, WorkloadQueries, build_server

__all__ = ["PrometheusServerConfig", "WorkloadQueries", "build_server"]
