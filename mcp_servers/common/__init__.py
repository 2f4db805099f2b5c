"""Shared by the four MCP servers: errors, HTTP to backends, bounding, auth, tracing, running."""

from mcp_servers.common.bounding import Limits, Notes, downsample, trim
from mcp_servers.common.errors import (
    BackendBadResponse,
    BackendError,
    BackendNotFound,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    BadArguments,
    McpServerError,
)
from mcp_servers.common.http import BackendConfig, get_json, make_http_client
from mcp_servers.common.server import READ_ONLY, Backend, ServerAuth, Transport, add_read_only_tool, new_server, serve

__all__ = [
    "READ_ONLY",
    "Backend",
    "BackendBadResponse",
    "BackendConfig",
    "BackendError",
    "BackendNotFound",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "BadArguments",
    "Limits",
    "McpServerError",
    "Notes",
    "ServerAuth",
    "Transport",
    "add_read_only_tool",
    "downsample",
    "get_json",
    "make_http_client",
    "new_server",
    "serve",
    "trim",
]
