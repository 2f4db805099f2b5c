"""`driftwise mcp prometheus|grafana|pagerduty|kubernetes`: run one read-only MCP server as its own process.

Settings are read here, once, and handed to the server package as its own config model.
"""

from __future__ import annotations

import ipaddress
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from driftwise.cli import ConfigOption, settings_or_exit, setup_logging
from driftwise.settings import BackendSettings, Settings


class ServerName(StrEnum):
    prometheus = "prometheus"
    grafana = "grafana"
    pagerduty = "pagerduty"
    kubernetes = "kubernetes"


class TransportName(StrEnum):
    http = "http"
    stdio = "stdio"


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def backend_config(section: BackendSettings, auth_scheme: str = "Bearer") -> Any:
    from mcp_servers.common import BackendConfig

    return BackendConfig(url=section.url, token=section.token, auth_scheme=auth_scheme,
                         timeout_s=section.timeout_s, verify_tls=section.verify_tls,
                         ca_bundle=section.ca_bundle)


def build(name: ServerName, settings: Settings, *, auth: Any) -> Any:
    """The named server, configured from settings (also used by the supervisor and the benchmark)."""
    if name is ServerName.prometheus:
        from mcp_servers.prometheus import PrometheusServerConfig, WorkloadQueries, build_server

        queries = WorkloadQueries(**settings.prometheus.queries.model_dump())
        return build_server(PrometheusServerConfig(backend=backend_config(settings.prometheus), queries=queries),
                            auth=auth)
    if name is ServerName.grafana:
        from mcp_servers.grafana import GrafanaServerConfig
        from mcp_servers.grafana import build_server as build_grafana

        return build_grafana(GrafanaServerConfig(backend=backend_config(settings.grafana)), auth=auth)
    if name is ServerName.pagerduty:
        from mcp_servers.pagerduty import PagerDutyServerConfig
        from mcp_servers.pagerduty import build_server as build_pagerduty

        config = PagerDutyServerConfig(backend=backend_config(settings.pagerduty, auth_scheme="Token token="))
        return build_pagerduty(config, auth=auth)
    from mcp_servers.kubernetes import KubernetesServerConfig
    from mcp_servers.kubernetes import build_server as build_kubernetes

    return build_kubernetes(KubernetesServerConfig(backend=backend_config(settings.kubernetes)), auth=auth)


def register(app: typer.Typer) -> None:
    @app.command("mcp")
    def mcp_command(
        server: ServerName = typer.Argument(..., help="which backend's MCP server to run"),
        transport: TransportName = typer.Option(TransportName.http, help="http: streamable HTTP at /mcp; stdio"),
        port: int | None = typer.Option(None, help="HTTP port (default: settings mcp.<server>.port)"),
        host: str | None = typer.Option(None, help="HTTP bind address (default: settings host)"),
        no_auth: bool = typer.Option(False, "--no-auth", help="serve HTTP without a bearer token, on a loopback "
                                                              "address only (conformance suites that cannot send "
                                                              "headers; never in production)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Run a read-only MCP server over one backend's real HTTP API."""
        settings = settings_or_exit(config)
        setup_logging(settings.log_level, f"mcp-{server.value}")
        from mcp_servers.common import ServerAuth, serve
        from mcp_servers.common.tracing import setup_tracing

        if settings.telemetry.otlp_endpoint:
            setup_tracing(f"mcp-{server.value}", settings.telemetry.otlp_endpoint)
        own = getattr(settings.mcp, server.value)
        bind_host = host or settings.host
        bind_port = port or own.port
        auth = None
        if transport is TransportName.http and no_auth:
            if not is_loopback(bind_host):
                from driftwise.cli import fail

                fail(f"--no-auth serves MCP without a bearer token and is for tests on this machine only: bind it "
                     f"to a loopback address (--host 127.0.0.1), not {bind_host!r}", 2)
            logging.getLogger("driftwise.mcp").warning(
                "mcp-%s serves without a bearer token (--no-auth) at http://%s:%s/mcp: tests only",
                server.value, bind_host, bind_port)
        if transport is TransportName.http and not no_auth:
            from driftwise.cli import fail
            from driftwise.settings import ConfigError, require_token

            try:
                tokens = require_token(f"mcp.{server.value}.token", own.token)
            except ConfigError as exc:
                fail(f"configuration error: {exc} (or pass --no-auth)", 2)
            auth = ServerAuth(tokens=tokens, public_url=f"http://{bind_host}:{bind_port}/mcp")
        mcp_server = build(server, settings, auth=auth)
        serve(mcp_server, transport.value, host=bind_host, port=bind_port)
