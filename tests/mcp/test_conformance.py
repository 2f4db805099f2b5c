"""One suite over every MCP server: tools as the contract names them, typed, read-only, errors typed, auth."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from driftwise.cli.mcp import ServerName, build
from driftwise.settings import load_settings
from tests.support.binaries import IN_CI
from tests.support.mcp_stack import SERVERS, TOKEN, Stack, backend_env

CONTRACT = {
    "prometheus": {"query", "query_range", "workload_traffic", "workload_memory"},
    "grafana": {"annotations", "search_dashboards"},
    "pagerduty": {"incidents", "incident"},
    "kubernetes": {"get_object", "events_for", "field_managers", "autoscalers_for", "rbac_for", "namespace",
                   "field_descriptions"},
}
NOW, EARLIER = "2026-11-20T16:30:00Z", "2026-11-20T14:30:00Z"
VALID_CALLS: dict[str, dict[str, dict[str, Any]]] = {
    "prometheus": {
        "query": {"promql": "up", "time": NOW},
        "query_range": {"promql": "up", "start": EARLIER, "end": NOW},
        "workload_traffic": {"namespace": "a", "service": "b", "at": NOW, "baseline_start": EARLIER,
                             "baseline_end": NOW},
        "workload_memory": {"namespace": "a", "workload": "b", "start": EARLIER, "end": NOW},
    },
    "grafana": {"annotations": {"start": EARLIER, "end": NOW}, "search_dashboards": {}},
    "pagerduty": {"incidents": {"service": "b", "since": EARLIER, "until": NOW},
                  "incident": {"incident_id": "Q1019INC"}},  # v01's incident: the required-only calls find it
    "kubernetes": {
        "get_object": {"api_version": "apps/v1", "kind": "Deployment", "name": "b", "namespace": "a"},
        "events_for": {"kind": "Deployment", "name": "b", "namespace": "a"},
        "field_managers": {"api_version": "apps/v1", "kind": "Deployment", "name": "b", "namespace": "a"},
        "autoscalers_for": {"kind": "Deployment", "name": "b", "namespace": "a"},
        "rbac_for": {"namespace": "a", "service_account": "b"},
        "namespace": {"name": "a"},
        "field_descriptions": {"api_version": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                               "paths": ["/spec/action"]},
    },
}
ALL_TOOLS = [(server, tool) for server, tools in VALID_CALLS.items() for tool in tools]


@asynccontextmanager
async def http_client(url: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP; the SDK leaves a client it was given open, so this one closes it."""
    import httpx2

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http, Client(streamable_http_client(url, http_client=http)) as c:
        yield c


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
async def test_tools_listed_typed_and_read_only(stack: Stack, server: str) -> None:
    async with http_client(stack.endpoints[server].url) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == CONTRACT[server]
    for tool in tools:
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None and "kind" in tool.output_schema["properties"], tool.name
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert "description" in prop or "anyOf" in prop or name in ("api_version", "kind"), (tool.name, name)


@pytest.mark.slow
@pytest.mark.parametrize(("server", "tool"), ALL_TOOLS)
async def test_schemas_say_what_a_call_requires(stack: Stack, server: str, tool: str) -> None:
    """A call with exactly the schema's required arguments succeeds; the schemas are valid JSON Schema."""
    stack.activate("v01-payments-emergency-scale-up")
    async with http_client(stack.endpoints[server].url) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}[tool]
        required = set(listed.input_schema.get("required", []))
        assert required <= set(VALID_CALLS[server][tool]), (tool, required)
        result = await client.call_tool(tool, {k: v for k, v in VALID_CALLS[server][tool].items() if k in required})
    Draft202012Validator.check_schema(listed.input_schema)
    Draft202012Validator.check_schema(listed.output_schema or {})
    assert not result.is_error, result.content


@pytest.mark.parametrize("server", SERVERS)
async def test_an_unknown_prompt_is_invalid_params(server: str) -> None:
    mcp_server = build(ServerName(server), _settings_for(_dead_port()), auth=None)
    async with Client(mcp_server) as client:
        assert (await client.list_prompts()).prompts == []
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("no_such_prompt")
    assert raised.value.error.code == INVALID_PARAMS and "no_such_prompt" in raised.value.error.message


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_http_requires_the_bearer_token(stack: Stack, server: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(stack.endpoints[server].url, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def silent_backend() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung backend."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def _settings_for(port: int, timeout_s: float = 2.0) -> Any:
    section = {"url": f"http://127.0.0.1:{port}", "timeout_s": timeout_s}
    return load_settings(None, prometheus=section, grafana=section, pagerduty=section, kubernetes=section)


@pytest.mark.parametrize(("server", "tool"), ALL_TOOLS)
async def test_backend_down_is_an_error_result_naming_it(server: str, tool: str) -> None:
    mcp_server = build(ServerName(server), _settings_for(_dead_port()), auth=None)
    async with Client(mcp_server) as client:
        result = await client.call_tool(tool, VALID_CALLS[server][tool])
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"{server} unavailable: cannot reach" in text


@pytest.mark.parametrize("server", SERVERS)
async def test_backend_hung_is_an_error_within_the_timeout(server: str, silent_backend: int) -> None:
    import time

    mcp_server = build(ServerName(server), _settings_for(silent_backend, timeout_s=0.3), auth=None)
    tool, args = next(iter(VALID_CALLS[server].items()))
    async with Client(mcp_server) as client:
        started = time.monotonic()
        result = await client.call_tool(tool, args)
    assert result.is_error and f"{server} timed out" in result.content[0].text  # type: ignore[union-attr]
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("server", SERVERS)
async def test_bad_arguments_are_error_results(server: str) -> None:
    mcp_server = build(ServerName(server), _settings_for(_dead_port()), auth=None)
    tool, args = next(iter(VALID_CALLS[server].items()))
    broken = {k: "not-a-valid-value with spaces!" for k in args} or {"unexpected": 1}
    async with Client(mcp_server) as client:
        result = await client.call_tool(tool, broken)
        unknown = await client.call_tool("delete_everything", {})
    assert result.is_error and unknown.is_error


@pytest.mark.slow
async def test_stdio_transport(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, **backend_env(stack.sandbox_base, str(tmp_path))}
    params = StdioServerParameters(command=sys.executable, args=["-m", "driftwise", "mcp", "kubernetes",
                                                                     "--transport", "stdio"], env=env)
    stack.activate("v01-payments-emergency-scale-up")
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("namespace", {"name": "payments"})
    assert {t.name for t in tools} == CONTRACT["kubernetes"]
    assert not result.is_error and result.structured_content["found"] is True  # type: ignore[index]


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


@pytest.mark.slow
def test_mcp_inspector_cli_lists_and_calls_tools(stack: Stack) -> None:
    npx = shutil.which("npx")
    if npx is None:
        if IN_CI:
            pytest.fail("npx is not installed (Node 20 + npm are required for the MCP Inspector interop test)")
        pytest.skip("npx is not installed")
    stack.activate("v06-hpa-owned-replicas")
    url = stack.endpoints["kubernetes"].url
    base = [npx, "-y", INSPECTOR, "--cli", url, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=240)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert '"autoscalers_for"' in listed.stdout and '"readOnlyHint": true' in listed.stdout
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "autoscalers_for", "--tool-arg", "kind=Deployment",
         "--tool-arg", "name=orders-api", "--tool-arg", "namespace=orders"],
        capture_output=True, text=True, timeout=240,
    )
    assert called.returncode == 0, called.stderr[-2000:]
    assert '"minReplicas"' not in called.stdout and '"min_replicas": 4' in called.stdout
