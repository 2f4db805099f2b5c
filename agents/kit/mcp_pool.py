"""Calls read-only MCP servers (streamable HTTP, or stdio children) on sessions kept open, and returns Evidence.

Opening an MCP session costs tens of milliseconds; a call on an open one a few. So each server
gets one long-lived session, owned by a background task (the SDK's transports are task-scoped:
the task that opens a session must be the one that closes it). Calls may come from any task.

`call()` never raises for a backend, tool, transport or timeout failure: it returns an Evidence
whose `error` names the server, the tool and the cause, because a missing piece of context is a
fact the reasoner must weigh ("the evidence could not be had"), not a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolRequest, CallToolRequestParams, CallToolResult, TextContent, Tool
from pydantic import JsonValue, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from protocol.context import ToolResult
from protocol.models import Evidence

logger = logging.getLogger(__name__)

_RESULT: TypeAdapter[Any] = TypeAdapter(ToolResult)
_ARGS: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class McpEndpoint:
    """Where one MCP server listens (`http://host:port/mcp`) and the bearer token it requires; or, with
    `command`, a server this process runs as its stdio child (with only `env` and the SDK's safe defaults)."""

    url: str = ""
    token: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    open_timeout_s: float | None = None
    """How long opening a session may take (a stdio child's start included); None: the pool's."""

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.command):
            raise ValueError("an MCP endpoint has exactly one of `url` (streamable HTTP) or `command` (stdio)")

    @property
    def where(self) -> str:
        return self.url or " ".join([self.command or "", *self.args])


class McpCallError(Exception):
    """A tool call that produced no result: the message names the server, the tool and the cause."""


class _Session:
    """One server's kept-open session, (re)opened on demand by a task that owns its transport."""

    def __init__(self, name: str, endpoint: McpEndpoint, open_timeout_s: float) -> None:
        self.name = name
        self.endpoint = endpoint
        self.open_timeout_s = open_timeout_s
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None and self._owner is not None and not self._owner.done():
            return self._client
        async with self._lock:
            if self._client is not None and self._owner is not None and not self._owner.done():
                return self._client
            await self._shutdown()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._owner = asyncio.create_task(self._own(ready), name=f"mcp-session-{self.name}")
            try:
                async with asyncio.timeout(self.open_timeout_s):
                    self._client = await asyncio.shield(ready)
            except BaseException:
                await self._shutdown()
                raise
            return self._client

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        ep = self.endpoint
        headers = {"Authorization": f"Bearer {ep.token}"} if ep.token else {}
        try:
            if ep.command:
                async with Client(StdioServerParameters(command=ep.command, args=list(ep.args),
                                                        env=dict(ep.env))) as client:
                    if not ready.done():
                        ready.set_result(client)
                    await self._stop.wait()
                return
            # Per-call deadlines are ours; the transport's own timeouts only bound a dead socket.
            async with (
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
                Client(streamable_http_client(ep.url, http_client=http)) as client,
            ):
                if not ready.done():
                    ready.set_result(client)
                await self._stop.wait()
        except Exception as exc:  # the owner task is the edge of this session: hand the cause to the opener
            if not ready.done():
                ready.set_exception(exc)
            else:
                logger.warning("MCP session to %s (%s) ended: %r", self.name, ep.where, exc)
        finally:
            if not ready.done():
                ready.set_exception(ConnectionError("session closed before it opened"))

    def broken(self) -> None:
        """Forget the session after a transport failure; the next call opens a new one."""
        self._client = None
        self._stop.set()

    async def _shutdown(self) -> None:
        self._client = None
        owner, self._owner = self._owner, None
        if owner is None:
            return
        self._stop.set()
        try:
            async with asyncio.timeout(5.0):
                await owner
        except TimeoutError:
            owner.cancel()
        except Exception:  # already logged by the owner
            pass

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown()


def _text(result: CallToolResult) -> str:
    parts = [c.text for c in result.content if isinstance(c, TextContent)]
    return " ".join(parts).strip() or "the tool reported an error without a message"


def cut(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


def _describe(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, BaseExceptionGroup):
        detail = "; ".join(_describe(e) for e in exc.exceptions)
    return detail


class McpPool:
    """Sessions to several MCP servers, kept open; `call()` returns Evidence and never raises for failures."""

    def __init__(self, servers: dict[str, McpEndpoint], call_timeout_s: float, open_timeout_s: float = 5.0) -> None:
        self._servers = dict(servers)
        self.call_timeout_s = call_timeout_s
        self._sessions = {name: _Session(name, ep, ep.open_timeout_s or open_timeout_s)
                          for name, ep in self._servers.items()}

    @property
    def servers(self) -> list[str]:
        return list(self._servers)

    async def start(self) -> None:
        """Open every session now; a server that is down is retried at its first call, not fatal here."""
        results = await asyncio.gather(*(s.client() for s in self._sessions.values()), return_exceptions=True)
        for session, result in zip(self._sessions.values(), results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("MCP server %s at %s not reachable yet: %s", session.name, session.endpoint.where,
                               _describe(result))

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()), return_exceptions=True)

    async def __aenter__(self) -> McpPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def tools(self, server: str, timeout_s: float | None = None) -> list[Tool]:
        """The tools `server` lists (every page); McpCallError when it cannot be asked."""
        session = self._sessions.get(server)
        if session is None:
            raise McpCallError(f"no MCP server named {server!r} is configured (known: {', '.join(self._servers)})")
        deadline = timeout_s if timeout_s is not None else session.open_timeout_s + max(self.call_timeout_s, 5.0)
        try:
            async with asyncio.timeout(deadline):
                client = await session.client()
                listed = await client.list_tools()
                tools = list(listed.tools)
                while listed.next_cursor:
                    listed = await client.list_tools(cursor=listed.next_cursor)
                    tools += listed.tools
        except TimeoutError:
            raise McpCallError(f"{server}: tools/list got no answer within {deadline:g}s") from None
        except Exception as exc:  # transport or session failure: the edge of one request
            session.broken()
            raise McpCallError(f"{server} ({session.endpoint.where}): unreachable or failed: "
                               f"{_describe(exc)}") from exc
        return tools

    async def call_tool(self, server: str, tool: str, arguments: dict[str, JsonValue],
                        timeout_s: float | None = None, *, tool_errors: bool = False) -> CallToolResult:
        """One tools/call within the deadline; McpCallError (naming server, tool, cause) when it has no result.

        A result flagged `is_error` is the tool's own answer: it raises too, with the tool's message, unless
        `tool_errors` (an adapter that reads "not found" answers asks for them)."""
        session = self._sessions.get(server)
        if session is None:
            raise McpCallError(f"no MCP server named {server!r} is configured (known: {', '.join(self._servers)})")
        deadline = timeout_s if timeout_s is not None else self.call_timeout_s
        try:
            async with asyncio.timeout(deadline):
                client = await session.client()
                # The session's own call_tool() would also check the result against the tool's JSON
                # output schema (listing the tools first); the adapters validate the result into our own
                # typed models, so the request goes out as a plain tools/call: one round trip.
                result = await client.session.send_request(
                    CallToolRequest(params=CallToolRequestParams(name=tool, arguments=arguments)), CallToolResult,
                    request_read_timeout_seconds=deadline,
                )
        except TimeoutError:  # a slow backend, not a broken session: keep it
            raise McpCallError(f"{server}.{tool}: no answer within {deadline:g}s") from None
        except Exception as exc:  # transport, protocol or session failure: the edge of one call
            session.broken()
            raise McpCallError(f"{server}.{tool}: MCP server unreachable or failed: {_describe(exc)}") from exc
        if result.is_error and not tool_errors:
            raise McpCallError(f"{server}.{tool}: {_text(result)}")
        return result

    async def call(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        evidence_id: str,
        observed_at: datetime,
        timeout_s: float | None = None,
    ) -> Evidence:
        """Call a tool of Driftwise's own servers (structured content of protocol.context) as Evidence."""
        try:
            args = _ARGS.validate_python(to_jsonable_python(arguments))
        except (ValidationError, ValueError, TypeError) as exc:
            args, bad_arguments = {}, f"arguments are not JSON: {exc}"
        else:
            bad_arguments = ""

        def failed(message: str) -> Evidence:
            return Evidence(id=evidence_id, source=server, tool=tool, arguments=args, observed_at=observed_at,
                            error=cut(message))

        if bad_arguments:
            return failed(f"{server}.{tool}: {bad_arguments}")
        try:
            result = await self.call_tool(server, tool, args, timeout_s)
            value = structured(result, f"{server}.{tool}")
        except McpCallError as exc:
            return failed(str(exc))
        return Evidence(id=evidence_id, source=server, tool=tool, arguments=args, value=value,
                        observed_at=observed_at)


def structured(result: CallToolResult, what: str) -> Any:
    """A result's structured content as the typed value of protocol.context (Driftwise's own tools)."""
    if result.structured_content is None:
        raise McpCallError(f"{what}: the tool returned no structured content")
    try:
        return _RESULT.validate_python(result.structured_content)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise McpCallError(f"{what}: unexpected result shape: {first['msg']} at {first['loc']}") from None


def text_of(result: CallToolResult) -> str:
    """The text parts of a result, joined (community servers answer in text: JSON, YAML or a table)."""
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))
