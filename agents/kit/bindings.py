"""Bindings by configuration: which MCP server and tool answer each evidence need, and how.

A binding names a configured MCP server, one or more tool calls (each with an argument mapping:
templates over the need's arguments) and the adapter that turns the calls' results into the need's
typed value (protocol/context.py). Driftwise ships a preset per server it knows (SHIPPED): its own
servers (the default: one call of the need's own tool with the need's own arguments) and
kubernetes-mcp-server, mcp-grafana, prometheus-mcp-server and pagerduty-mcp.

Templates: a string that is exactly `{name}` becomes that value with its type (a list stays a list,
`{start_ms}` an integer); any other string is filled with str.format (PromQL braces doubled). The
values are the need's arguments, each time also as `<field>_ms` and `<field>_unix`, and `step` (a
range query's resolution: 120 points over the need's window) and `pod_regex` (a workload's pods).
A need's own string arguments (names, namespaces) go into a larger template only when they are plain
Kubernetes names, so nothing a drift carries can rewrite a query.

Start-up (`BoundSources.check`) lists each bound server's tools: a binding whose tool is missing, or not
read-only (the tool's readOnlyHint annotation, or `read_only_mode` declared for the server), stops the
process with a message naming the binding. A server that cannot be reached at start-up is checked at
its first use instead, and its evidence is an error until it passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agents.kit.adapters import ADAPTERS, AdapterError
from agents.kit.mcp_pool import McpCallError, McpPool, cut
from protocol.models import Evidence
from protocol.needs import BACKEND, TOOL, Need

log = logging.getLogger(__name__)

__all__ = ["SHIPPED", "Binding", "BindingError", "BoundSources", "ToolCall", "preset_binding", "resolve_bindings"]


class BindingError(Exception):
    """A binding that cannot work (unknown preset, server or adapter; tool missing or not read-only)."""


class ToolCall(BaseModel):
    """One tools/call of a binding: the tool, and its arguments as templates (null: the need's own arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1)
    arguments: dict[str, JsonValue] | None = Field(
        default=None, description="argument templates over the need's arguments; null = the need's arguments as is")


class Binding(BaseModel):
    """How one need is answered: a server, its calls (named, run in parallel) and the adapter of their results."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str = Field(min_length=1, description="a configured MCP server")
    calls: dict[str, ToolCall] = Field(min_length=1)
    adapter: str = Field(description="an adapter of agents/kit/adapters.py (ADAPTERS)")
    preset: str = Field(default="", description="the shipped binding it came from, if any")

    def describe(self) -> str:
        """`server.tool` (tools joined with `/` when the binding calls several)."""
        return f"{self.server}." + "/".join(dict.fromkeys(c.tool for c in self.calls.values()))


def _one(tool: str, **arguments: JsonValue) -> dict[str, ToolCall]:
    return {"result": ToolCall(tool=tool, arguments=arguments)}


_REQUESTS = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}"}}[5m]))'
_ERRORS = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}",code=~"5.."}}[5m]))'
_MEMORY = ('max by (pod, container) (container_memory_working_set_bytes{{namespace="{namespace}",'
           'pod=~"{pod_regex}",container!=""}})')
_RBAC = "rbac.authorization.k8s.io/v1"


def _kube_list(api_version: str, kind: str, namespaced: bool = True) -> ToolCall:
    arguments: dict[str, JsonValue] = {"apiVersion": api_version, "kind": kind}
    if namespaced:
        arguments["namespace"] = "{namespace}"
    return ToolCall(tool="resources_list", arguments=arguments)


SHIPPED: dict[str, dict[Need, tuple[dict[str, ToolCall], str]]] = {
    "driftwise": {need: ({"result": ToolCall(tool=TOOL[need])}, "driftwise") for need in Need},
    "prometheus-mcp-server": {
        Need.TRAFFIC: ({
            "requests": ToolCall(tool="execute_query", arguments={"query": _REQUESTS, "time": "{at}"}),
            "errors": ToolCall(tool="execute_query", arguments={"query": _ERRORS, "time": "{at}"}),
            "baseline_requests": ToolCall(tool="execute_range_query", arguments={
                "query": _REQUESTS, "start": "{baseline_start}", "end": "{baseline_end}", "step": "{step}"}),
            "baseline_errors": ToolCall(tool="execute_range_query", arguments={
                "query": _ERRORS, "start": "{baseline_start}", "end": "{baseline_end}", "step": "{step}"}),
        }, "prometheus-api.traffic"),
        Need.MEMORY: (_one("execute_range_query", query=_MEMORY, start="{start}", end="{end}", step="{step}"),
                      "prometheus-api.memory"),
    },
    "mcp-grafana": {
        Need.ANNOTATIONS: (_one("get_annotations", **{"from": "{start_ms}", "to": "{end_ms}", "limit": "{limit}"}),
                           "grafana-api.annotations"),
    },
    "pagerduty-mcp": {
        Need.INCIDENTS: ({
            "services": ToolCall(tool="list_services", arguments={"query": "{service}"}),
            "window": ToolCall(tool="list_incidents", arguments={
                "request_scope": "all", "since": "{since}", "until": "{until}",
                "statuses": ["triggered", "acknowledged", "resolved"], "limit": 100}),
            "open": ToolCall(tool="list_incidents", arguments={
                "request_scope": "all", "statuses": ["triggered", "acknowledged"], "limit": 100}),
        }, "pagerduty-mcp.incidents"),
    },
    "kubernetes-mcp-server": {
        Need.NAMESPACE: (_one("resources_get", apiVersion="v1", kind="Namespace", name="{name}"),
                         "kubernetes-mcp-server.namespace"),
        Need.AUTOSCALERS: ({"hpas": _kube_list("autoscaling/v2", "HorizontalPodAutoscaler")},
                           "kubernetes-mcp-server.autoscalers"),
        Need.EVENTS: ({"events": ToolCall(tool="events_list", arguments={"namespace": "{namespace}"}),
                       "pods": _kube_list("v1", "Pod")}, "kubernetes-mcp-server.events"),
        Need.FIELD_MANAGERS: (_one("resources_get", apiVersion="{api_version}", kind="{kind}", name="{name}",
                                   namespace="{namespace}"), "kubernetes-mcp-server.field_managers"),
        Need.RBAC: ({"role_bindings": _kube_list(_RBAC, "RoleBinding"), "roles": _kube_list(_RBAC, "Role"),
                     "cluster_role_bindings": _kube_list(_RBAC, "ClusterRoleBinding", namespaced=False),
                     "cluster_roles": _kube_list(_RBAC, "ClusterRole", namespaced=False)},
                    "kubernetes-mcp-server.rbac"),
    },
}
"""Shipped bindings: preset -> need -> (calls, adapter). The preset names the server software, not a server."""


def preset_binding(preset: str, need: Need, server: str) -> Binding:
    table = SHIPPED.get(preset)
    if table is None:
        raise BindingError(f"no shipped binding preset {preset!r} (known: {', '.join(SHIPPED)})")
    entry = table.get(need)
    if entry is None:
        raise BindingError(f"preset {preset!r} does not answer need {need.value!r} "
                           f"(it answers: {', '.join(n.value for n in table)})")
    calls, adapter = entry
    return Binding(server=server, calls=calls, adapter=adapter, preset=preset)


def resolve_bindings(
    use: Mapping[str, str], custom: Mapping[Need, Binding], servers: set[str],
    defaults: Mapping[Need, str] | None = None,
) -> dict[Need, Binding]:
    """Every need's binding: Driftwise's own servers, then `use` (preset -> server: every need that preset
    answers), then `custom` (need -> binding). Each server named must be in `servers`; BindingError names
    the setting that is wrong."""
    backends = defaults if defaults is not None else BACKEND
    out = {need: preset_binding("driftwise", need, backends[need]) for need in Need}
    for preset, server in use.items():
        if preset not in SHIPPED:
            raise BindingError(f"mcp.use.{preset}: no such shipped binding preset (known: {', '.join(SHIPPED)})")
        for need in SHIPPED[preset]:
            out[need] = preset_binding(preset, need, server)
    out.update(custom)
    for need, binding in out.items():
        where = f"mcp.bindings.{need.value}" if need in custom else f"the {binding.preset} binding of {need.value}"
        adapter = ADAPTERS.get(binding.adapter)
        if adapter is None:
            raise BindingError(f"{where}: no adapter {binding.adapter!r} (known: {', '.join(sorted(ADAPTERS))})")
        if adapter.need is not None and adapter.need != need:
            raise BindingError(f"{where}: adapter {binding.adapter!r} yields {adapter.need.value}, not {need.value}")
        missing = adapter.calls - set(binding.calls)
        if missing:
            raise BindingError(f"{where}: adapter {binding.adapter!r} needs calls named {', '.join(sorted(missing))}")
    return out


# --- templates ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._:-]{0,251}[A-Za-z0-9])?$")
_WHOLE = re.compile(r"^\{([a-z_]+)\}$")
_POINTS = 120


def _step(start: datetime, end: datetime) -> str:
    return f"{max(1, math.ceil((end - start).total_seconds() / (_POINTS - 1)))}s"


def template_values(args: Any) -> dict[str, JsonValue]:
    """The values a binding's templates may use for one need's arguments (see the module docstring)."""
    values: dict[str, JsonValue] = dict(args.arguments())
    for name in type(args).model_fields:
        at = getattr(args, name)
        if isinstance(at, datetime):
            values[f"{name}_ms"] = int(at.timestamp() * 1000)
            values[f"{name}_unix"] = int(at.timestamp())
    window = (getattr(args, "baseline_start", None), getattr(args, "baseline_end", None))
    if window[0] is None:
        window = (getattr(args, "start", None), getattr(args, "end", None))
    if window[0] is not None and window[1] is not None:
        values["step"] = _step(window[0], window[1])
    workload = getattr(args, "workload", None)
    if isinstance(workload, str) and _PLAIN.match(workload):
        values["pod_regex"] = workload.replace(".", "\\\\.") + "-([a-z0-9]+-)?[a-z0-9]+"
    return values


class _Fill(dict[str, str]):
    def __init__(self, values: Mapping[str, JsonValue]) -> None:
        super().__init__()
        self.values = values

    def __missing__(self, key: str) -> str:
        if key not in self.values:
            raise BindingError(f"template names {{{key}}}, which this need does not have "
                               f"(it has: {', '.join(sorted(self.values))})")
        value = self.values[key]
        text = str(value)
        if isinstance(value, str) and key not in ("pod_regex", "step") and not _PLAIN.match(text) \
                and not re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", text):
            raise BindingError(f"{key}={text!r} is not a plain name: it is not spliced into a larger argument")
        return text


def fill(template: JsonValue, values: Mapping[str, JsonValue]) -> JsonValue:
    if isinstance(template, str):
        whole = _WHOLE.match(template)
        if whole:
            key = whole.group(1)
            if key not in values:
                raise BindingError(f"template names {template}, which this need does not have "
                                   f"(it has: {', '.join(sorted(values))})")
            return values[key]
        return template.format_map(_Fill(values))
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items() if not (isinstance(v, str) and _absent(v, values))}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def _absent(template: str, values: Mapping[str, JsonValue]) -> bool:
    """An optional argument (`{namespace}` of a cluster-scoped object) left out when the need has no value."""
    whole = _WHOLE.match(template)
    return bool(whole) and whole.group(1) in _OPTIONAL and values.get(whole.group(1)) is None


_OPTIONAL = frozenset({"namespace", "since"})


# --- the bound sources ------------------------------------------------------------------------------


class BoundSources:
    """The evidence needs, answered through their bindings over one McpPool.

    `fetch()` never raises for a backend, tool, transport, adapter or timeout failure: the Evidence
    carries the error, naming the binding, because missing context is a fact the reasoning weighs.
    """

    def __init__(self, pool: McpPool, bindings: Mapping[Need, Binding], read_only_servers: frozenset[str] = frozenset(),
                 ) -> None:
        self.pool = pool
        self.bindings = dict(bindings)
        self.read_only_servers = read_only_servers
        self._checked: set[str] = set()
        self._refused: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @property
    def servers(self) -> list[str]:
        return list(dict.fromkeys(b.server for b in self.bindings.values()))

    async def check(self, strict: bool = True) -> None:
        """List each bound server's tools and check every binding against them (see the module docstring).

        With `strict`, a mis-bound tool raises BindingError; a server that cannot be reached is left to be
        checked at its first use either way."""
        results = await asyncio.gather(*(self._check_server(s) for s in self.servers), return_exceptions=True)
        problems = [r for r in results if isinstance(r, BindingError)]
        for other in results:
            if isinstance(other, BaseException) and not isinstance(other, BindingError):
                raise other
        if problems and strict:
            raise BindingError("; ".join(str(p) for p in problems))

    async def _check_server(self, server: str) -> None:
        async with self._lock:
            if server in self._checked:
                return
        try:
            tools = {t.name: t for t in await self.pool.tools(server)}
        except McpCallError as exc:
            log.warning("MCP server %s cannot list its tools yet (%s): its bindings are checked at first use",
                        server, exc)
            return
        problems = []
        for need, binding in self.bindings.items():
            if binding.server != server:
                continue
            for name, call in binding.calls.items():
                tool = tools.get(call.tool)
                where = f"binding {need.value} (server {server}, call {name})"
                if tool is None:
                    problems.append(f"{where}: the server has no tool {call.tool!r} "
                                    f"(it has: {', '.join(sorted(tools)) or 'none'})")
                elif not (tool.annotations is not None and tool.annotations.read_only_hint is True) \
                        and server not in self.read_only_servers:
                    problems.append(f"{where}: tool {call.tool!r} is not annotated read-only (readOnlyHint) and "
                                    f"the server is not declared in read-only mode: refused")
        async with self._lock:
            self._checked.add(server)
            if problems:
                self._refused[server] = "; ".join(problems)
        if problems:
            raise BindingError("; ".join(problems))

    async def fetch(self, args: Any, *, evidence_id: str, observed_at: datetime,
                    timeout_s: float | None = None) -> Evidence:
        """The need's typed value through its binding (its calls in parallel), or the error, as Evidence."""
        need: Need = args.need
        arguments = args.arguments()
        binding = self.bindings.get(need)
        via = binding.describe() if binding is not None else None

        def failed(message: str) -> Evidence:
            return Evidence(id=evidence_id, source=BACKEND[need], tool=TOOL[need], arguments=arguments,
                            observed_at=observed_at, error=cut(message), via=via)

        if binding is None:
            return failed(f"no binding answers need {need.value}")
        deadline = timeout_s if timeout_s is not None else self.pool.call_timeout_s
        try:
            async with asyncio.timeout(deadline):
                if binding.server not in self._checked:
                    with contextlib.suppress(BindingError):  # recorded in _refused
                        await self._check_server(binding.server)
                refused = self._refused.get(binding.server)
                if refused is not None:
                    raise BindingError(refused)
                values = template_values(args)
                calls = {name: call.arguments if call.arguments is None else fill(call.arguments, values)
                         for name, call in binding.calls.items()}
                results = await asyncio.gather(*(
                    self.pool.call_tool(binding.server, call.tool, arguments if calls[name] is None else calls[name],
                                        timeout_s=deadline, tool_errors=True)
                    for name, call in binding.calls.items()))
        except TimeoutError:
            return failed(f"binding {need.value} ({via}): no answer within {deadline:g}s")
        except (McpCallError, BindingError) as exc:
            return failed(f"binding {need.value}: {exc}")
        try:
            value = ADAPTERS[binding.adapter].read(args, dict(zip(binding.calls, results, strict=True)))
        except AdapterError as exc:
            return failed(f"binding {need.value} ({via}): {exc}")
        return Evidence(id=evidence_id, source=BACKEND[need], tool=TOOL[need], arguments=arguments, value=value,
                        observed_at=observed_at, via=via)
