"""`driftwise agent NAME [--port N]`: run one agent process (a configured specialist, or the drift agent)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from agents.kit.config import KitConfig
    from agents.kit.specialist import Specialist
    from driftwise.settings import Settings

_DEADLINE_MARGIN_S = 0.5


def kit_config(settings: Settings, name: str, port: int | None, specialist: type[Specialist]) -> KitConfig:
    """The kit's own config for specialist `name`, read from settings once, here at the edge."""
    from agents.kit.config import KitConfig, McpServerEndpoint, PeerEndpoint
    from driftwise.cli.bindings import mcp_wiring
    from driftwise.settings import require_token
    from protocol.tokens import accepted, current

    spec = settings.specialists[name]
    own = require_token(f"specialists.{name}.token", spec.token)
    # Only the peers it declares it consults (least privilege: compliance calls no one).
    peers = {
        other: PeerEndpoint(url=s.url(settings.host), token=token)
        for other, s in settings.specialists.items()
        if other != name and other in specialist.consults and s.enabled and (token := current(s.token)) is not None
    }
    servers, bindings = mcp_wiring(settings, specialist.needs) if specialist.needs else ({}, {})
    mcp = {server: McpServerEndpoint(**fields) for server, fields in servers.items()}
    delegate = settings.drift.delegate_timeout_s
    return KitConfig(
        agent=name, host=settings.host, port=port or spec.port, token=own,
        peer_tokens={peer: accepted(tokens) for peer, tokens in spec.peer_tokens.items()},
        keys_dir=settings.keys_dir, trust_store=settings.trust_store_path,
        # Answer before the caller gives up on us.
        deadline_s=max(0.3, delegate - _DEADLINE_MARGIN_S),
        peers=peers, peer_timeout_s=max(0.2, delegate - 2 * _DEADLINE_MARGIN_S),
        mcp_servers=mcp, bindings=bindings, mcp_timeout_s=settings.mcp.call_timeout_s,
        otlp_endpoint=settings.telemetry.otlp_endpoint, service_namespace=settings.telemetry.service_namespace,
        log_level=settings.log_level, options=spec.options, public_url=spec.endpoint,
    )


def load_specialist(module: str) -> type[Specialist]:
    """Import a specialist package and return its `SPECIALIST`; ValueError names what is wrong."""
    from agents.kit.specialist import Specialist

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ValueError(f"specialist module {module!r} cannot be imported ({exc})") from exc
    cls = getattr(mod, "SPECIALIST", None)
    if not (isinstance(cls, type) and issubclass(cls, Specialist)):
        raise ValueError(f"module {module!r} must expose SPECIALIST = <a subclass of agents.kit.Specialist>")
    return cls


def register(app: typer.Typer) -> None:
    from driftwise.cli import ConfigOption

    @app.command("agent")
    def agent(
        name: str = typer.Argument(..., help="a configured specialist (settings.specialists) or 'drift'"),
        port: int | None = typer.Option(None, "--port", help="listen port (default: from settings)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Run agent NAME as an A2A server (signed card, JWKS, bearer auth) until interrupted."""
        from driftwise.cli import fail, serve_forever, settings_or_exit, setup_logging

        settings = settings_or_exit(config)
        setup_logging(settings.log_level, f"agent-{name}")
        if name == "drift":
            from driftwise.cli.drift_agent import run_drift_agent

            run_drift_agent(settings, port)
            return
        spec = settings.specialists.get(name)
        if spec is None:
            read = f"the settings file {config}" if config else "no settings file (only the built-in defaults)"
            fail(f"unknown agent {name!r}: configured specialists are {', '.join(sorted(settings.specialists))}; "
                 f"read {read}. Add it under `specialists:` in a YAML file and pass that file with --config FILE "
                 "or DRIFTWISE_CONFIG=FILE", code=2)
            return
        if not spec.enabled:
            fail(f"agent {name!r} is disabled in settings (specialists.{name}.enabled)", code=2)
        from agents.kit.bindings import BindingError
        from agents.kit.errors import KitConfigError
        from agents.kit.server import serve
        from driftwise.settings import ConfigError

        try:
            cls = load_specialist(spec.module)
        except ValueError as exc:
            fail(f"specialists.{name}.module: {exc}", code=2)
            return
        try:
            kit = kit_config(settings, name, port, cls)
        except ConfigError as exc:
            fail(f"configuration error: {exc}", code=2)
            return
        try:
            serve_forever(serve(cls, kit))
        except KitConfigError as exc:
            fail(str(exc))
        except BindingError as exc:  # a missing or mis-bound tool: start-up stops here, naming the binding
            fail(f"MCP bindings refused: {exc}", 2)
        except KeyboardInterrupt:
            pass
