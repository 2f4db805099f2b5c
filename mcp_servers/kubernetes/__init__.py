"""MCP server over the Kubernetes API: get_object, events_for, field_managers, autoscalers_for, rbac_for, namespace."""

from mcp_servers.kubernetes.server import KubernetesServerConfig, build_server

__all__ = ["KubernetesServerConfig", "build_server"]
