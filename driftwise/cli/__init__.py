"""The `driftwise` command. Each sub-command lives in its own module and registers itself on `app`.

Heavy imports happen inside commands so that `driftwise --help` stays fast.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from driftwise.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    name="driftwise",
    help="Decide what to do about Argo CD drift: gather context, ask specialists, sign, guard, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = typer.Option(
    None, "--config", "-c", envvar="DRIFTWISE_CONFIG", help="YAML settings file (env DRIFTWISE_* overrides it)"
)


def settings_or_exit(config: Path | None, **overrides: object) -> Settings:
    """Load settings at the edge; a bad setting is a one-line error and exit status 2."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        typer.echo(f"driftwise: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> None:
    """End a command with a one-line error (never a traceback)."""
    typer.echo(f"driftwise: {message}", err=True)
    raise typer.Exit(code)


def serve_forever(main: Coroutine[Any, Any, T]) -> T:
    """Run a server process's main coroutine on uvloop: the same asyncio API, with a faster event loop
    and socket layer (the loop's own overhead was ~15% of the drift agent's CPU per decision)."""
    import asyncio
    import signal

    import uvloop

    def terminate(_signum: int, _frame: object) -> None:
        # uvicorn stops gracefully on SIGTERM and then re-raises it to the handler it found: with the
        # default one the process would die there, before the shutdown code (the audit head's last
        # checkpoint, closing stores) runs. Ending as Ctrl-C does lets every `finally` run.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    finally:
        signal.signal(signal.SIGTERM, previous)


def setup_logging(level: str, process: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {process:<18} %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # One INFO line per HTTP request costs more than the request on loopback; they stay available at debug.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for noisy in ("httpx", "httpx2", "httpcore", "mcp.server.streamable_http_manager", "mcp.server.lowlevel.server"):
        logging.getLogger(noisy).setLevel(quiet)


def _register() -> None:
    from driftwise.cli import keys

    keys.register(app)
    # Later modules register when present; each is owned by the part of Driftwise it runs.
    import importlib

    for name in ("sandbox", "mcp", "agents", "evaluate", "audit", "approvals", "report", "policy", "llm", "run",
                 "ask", "llm_local"):
        try:
            module = importlib.import_module(f"driftwise.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"driftwise.cli.{name}":
                raise
            continue
        module.register(app)


_register()


def main() -> None:
    app()
