"""The MCP servers and evidence bindings a process reads through, mapped from settings once, at its edge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from driftwise.settings import MCP_SERVER_NAMES, ConfigError, Settings
from protocol.needs import Need

if TYPE_CHECKING:
    from agents.kit.bindings import Binding


def mcp_wiring(settings: Settings, needs: Iterable[Need] | None = None) -> tuple[dict[str, dict[str, Any]],
                                                                                dict[Need, Binding]]:
    """(server name -> endpoint fields, need -> binding) for `needs` (default: every need), only the servers
    those bindings use. ConfigError names the setting that is wrong."""
    from agents.kit.bindings import Binding, BindingError, ToolCall, preset_binding, resolve_bindings
    from protocol.tokens import current

    mcp = settings.mcp
    servers: dict[str, dict[str, Any]] = {
        name: {"url": getattr(mcp, name).url(settings.host), "token": current(getattr(mcp, name).token)}
        for name in MCP_SERVER_NAMES
    }
    for name, ext in mcp.servers.items():
        servers[name] = {"url": ext.url or "", "token": ext.token.get_secret_value() if ext.token else None,
                         "command": ext.command, "args": list(ext.args), "env": dict(ext.env),
                         "read_only_mode": ext.read_only_mode, "open_timeout_s": ext.startup_timeout_s}
    known = ", ".join(servers)
    for preset, server in mcp.use.items():
        if server not in servers:
            raise ConfigError(f"setting `mcp.use.{preset}`: no MCP server named {server!r} (known: {known}; add it "
                              "under mcp.servers)")
    custom: dict[Need, Binding] = {}
    try:
        for need, entry in mcp.bindings.items():
            if entry.server not in servers:
                raise ConfigError(f"setting `mcp.bindings.{need.value}.server`: no MCP server named {entry.server!r} "
                                  f"(known: {known})")
            if entry.preset is not None:
                custom[need] = preset_binding(entry.preset, need, entry.server)
            else:
                assert entry.calls is not None and entry.adapter is not None  # the settings model checked it
                custom[need] = Binding(server=entry.server, adapter=entry.adapter, calls={
                    name: ToolCall(tool=c.tool, arguments=c.arguments) for name, c in entry.calls.items()})
        bindings = resolve_bindings(mcp.use, custom, set(servers))
    except BindingError as exc:
        raise ConfigError(str(exc)) from None
    if needs is not None:
        wanted = set(needs)
        bindings = {need: b for need, b in bindings.items() if need in wanted}
    used = {b.server for b in bindings.values()}
    return {name: fields for name, fields in servers.items() if name in used}, bindings
