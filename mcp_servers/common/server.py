"""What every Driftwise MCP server shares: construction (auth, lifespan), read-only tool
registration, a readiness route, and running over stdio or streamable HTTP."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, Literal, TypeVar

import httpx
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse

from mcp_servers.common.auth import StaticTokenVerifier, auth_settings
from mcp_servers.common.http import BackendConfig, make_http_client
from mcp_servers.common.tracing import instrument

C = TypeVar("C")

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
"""Every tool of every Driftwise MCP server: it only reads, and reading twice changes nothing."""

Transport = Literal["stdio", "http"]


class ServerAuth(BaseModel):
    """The bearer tokens the HTTP transport accepts (two while rotating), and the URL clients reach it at."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[SecretStr] = Field(min_length=1)
    public_url: str


class DriftwiseMcpServer(MCPServer[Any]):
    """The SDK's MCPServer, with the MCP spec's error for an unknown prompt.

    The spec answers `prompts/get` of a prompt the server does not have with JSON-RPC -32602
    (invalid params); the SDK's MCPServer raises a ValueError there, which reaches the client as
    error code 0. Our servers offer no prompts, so every `prompts/get` takes this path.
    """

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        if name not in {prompt.name for prompt in await self.list_prompts()}:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}", data={"name": name})
        return await super().get_prompt(name, arguments, context)


def new_server(
    name: str,
    instructions: str,
    *,
    auth: ServerAuth | None,
    lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
) -> MCPServer[Any]:
    """An MCPServer named `name`; with `auth`, HTTP requests without the token get 401."""
    kwargs: dict[str, Any] = {}
    if auth is not None:
        kwargs["token_verifier"] = StaticTokenVerifier([t.get_secret_value() for t in auth.tokens],
                                                      client_id=name)
        kwargs["auth"] = auth_settings(auth.public_url)
    server: MCPServer[Any] = DriftwiseMcpServer(
        name, instructions=instructions, version="1", lifespan=lifespan, log_level="WARNING", **kwargs
    )

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> JSONResponse:  # readiness only; says nothing about the backend
        return JSONResponse({"ok": True, "server": name})

    return server


def add_read_only_tool(server: MCPServer[Any], fn: Callable[..., Any], *, title: str, description: str) -> None:
    """Register `fn` (typed args, a protocol.context model returned) as a read-only tool."""
    server.add_tool(fn, title=title, description=description, annotations=READ_ONLY, structured_output=True)


def serve(server: MCPServer[Any], transport: Transport, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run until interrupted: stdio for a parent process, or streamable HTTP at http://host:port/mcp."""
    if transport == "stdio":
        server.run("stdio")
        return
    import anyio
    import uvicorn

    # What MCPServer.run("streamable-http") does, with two costs taken out (measured: ~15% of the
    # servers' CPU per tool call): a tool answers with one JSON body instead of an SSE stream
    # (our tools send no progress, so a stream carries nothing more; clients that ask for SSE
    # still accept JSON), and uvicorn writes no access log line per request.
    app = server.streamable_http_app(json_response=True, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level=server.settings.log_level.lower(), access_log=False)
    gc.freeze()  # what start-up built lives for the whole process: keep it out of every full GC pass
    anyio.run(uvicorn.Server(config).serve, backend_options={"use_uvloop": True})


class Backend(Generic[C]):
    """The process's one client of a backend API, opened and closed by the MCP server's lifespan.

    `factory` wraps the shared httpx.AsyncClient in the backend's typed client; tools reach it
    through `.client` while the server runs.
    """

    def __init__(
        self,
        config: BackendConfig,
        factory: Callable[[httpx.AsyncClient], C],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._factory = factory
        self._transport = transport
        self._client: C | None = None

    @asynccontextmanager
    async def lifespan(self, _: MCPServer[Any]) -> AsyncIterator[None]:
        async with make_http_client(self._config, self._transport) as http:
            instrument(http)
            self._client = self._factory(http)
            try:
                yield None
            finally:
                self._client = None

    @property
    def client(self) -> C:
        if self._client is None:
            raise RuntimeError("the backend client is used outside the server's lifespan")
        return self._client
