"""A stdio MCP server for the binding tests: one read-only tool, one tool without annotations."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp_types import ToolAnnotations

server: MCPServer = MCPServer("toy")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def execute_query(query: str, time: str | None = None) -> dict[str, object]:
    """Answer like the Prometheus HTTP API: 2 requests/s, no errors."""
    value = "0" if "5.." in query else "2"
    return {"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]}


@server.tool()
def execute_range_query(query: str, start: str, end: str, step: str) -> dict[str, object]:
    """No annotations: a binding may use it only when the server is declared read-only."""
    value = "0" if "5.." in query else "1"
    return {"resultType": "matrix", "result": [{"metric": {}, "values": [[0, value], [15, value]]}]}


if __name__ == "__main__":
    server.run()
