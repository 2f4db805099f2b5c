"""The MCP servers' one error taxonomy. Every error here reaches the caller as a tool result with
`is_error=true` whose text names the backend and the cause (they subclass the SDK's ToolError,
which the SDK turns into exactly that), never as a crash or a protocol error.

ToolError (mcp SDK)
 └── McpServerError
      ├── BadArguments            the arguments are inconsistent (e.g. neither `time` nor `start`/`end`)
      └── BackendError            a backend call failed; `.backend` names it ("prometheus: ...")
           ├── BackendUnavailable   connection refused/reset, or the backend answered 5xx
           ├── BackendTimeout       no answer within the per-call timeout
           ├── BackendRejected      the backend refused the request (4xx: auth, bad query)
           ├── BackendNotFound      the backend has no object of that id
           └── BackendBadResponse   it answered, but not in its documented shape
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class McpServerError(ToolError):
    """Base of every anticipated failure of a Driftwise MCP server."""


class BadArguments(McpServerError):
    """The tool's arguments are valid one by one but not together."""


class BackendError(McpServerError):
    """A backend call failed; the message starts with the backend's name so an LLM reader knows which."""

    what = "failed"

    def __init__(self, backend: str, cause: str) -> None:
        super().__init__(f"{backend} {self.what}: {cause}")
        self.backend = backend
        self.cause = cause


class BackendUnavailable(BackendError):
    what = "unavailable"


class BackendTimeout(BackendError):
    what = "timed out"


class BackendRejected(BackendError):
    what = "rejected the request"


class BackendNotFound(BackendError):
    what = "has no such object"


class BackendBadResponse(BackendError):
    what = "answered in an unexpected shape"
