"""`driftwise up`, `driftwise demo`, `driftwise bench`: run the whole system as separate local processes."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from driftwise.cli import ConfigOption

KeepStateOption = typer.Option(False, "--keep-state", help="keep the temporary state folder and every log")
PrometheusOption = typer.Option(None, "--prometheus", help="sandbox metrics: auto | real | builtin")
PortBaseOption = typer.Option(
    None, "--port-base", help="move every port into one block from here (sandbox +0..4, drift +5, "
    "specialists, MCP servers), replacing the configured ports (it prints where each went); 0 = any free block"
)


def _scenario_folder(scenarios: Path | None) -> Path:
    """The folder given, else the shipped scenarios; a folder that is not there stops the command."""
    from driftwise.cli import fail
    from driftwise.demo import default_scenarios_dir

    folder = (scenarios or default_scenarios_dir()).resolve()
    if not folder.is_dir():
        fail(f"scenario folder {folder} does not exist (pass --scenarios DIR)", 2)
    return folder


def _ports(settings: Any, port_base: int | None) -> int | None:
    from driftwise.supervisor import free_port_block, ports_needed

    if port_base == 0:
        return free_port_block(ports_needed(settings))
    return port_base


def _ports_of(settings: Any) -> dict[str, int]:
    from driftwise.supervisor import MCP_SERVERS, sandbox_base_port

    ports = {"sandbox": sandbox_base_port(settings), "drift": settings.drift.port}
    ports |= {name: spec.port for name, spec in settings.specialists.items() if spec.enabled}
    return ports | {f"mcp-{name}": getattr(settings.mcp, name).port for name in MCP_SERVERS}


def say_moved(command: str, port_base: int | None, before: Any, after: Any) -> None:
    """--port-base replaces the configured ports: say which moved where (no one looks for a process on the old one)."""
    if port_base is None:
        return
    was, now = _ports_of(before), _ports_of(after)
    moved = [f"{name} {was[name]} -> {port}" for name, port in now.items() if was.get(name) != port]
    typer.echo(f"driftwise {command}: --port-base moved the configured ports: " + (", ".join(moved) or "none")
               + " (the sandbox's other backends follow it on the next four ports)", err=True)


@contextmanager
def scratch_state(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh state folder for one run (keys, database, logs), removed afterwards unless kept."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield state
    finally:
        if keep:
            typer.echo(f"driftwise: state and logs kept in {state}", err=True)
        else:
            shutil.rmtree(state, ignore_errors=True)


def announce_autonomous(command: str) -> None:
    """demo, eval and bench act on what they decide (against the sandbox): say so, since the default is shadow."""
    typer.echo(f"driftwise {command}: mode autonomous (set for this run; the default is shadow)", err=True)


def _sandbox_args(prometheus: str | None) -> list[str] | None:
    from driftwise.cli import fail

    if prometheus is None:
        return None
    if prometheus not in ("auto", "real", "builtin"):
        fail(f"--prometheus must be auto, real or builtin, not {prometheus!r}", 2)
    return ["--prometheus", prometheus]


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        sandbox: list[Path] = typer.Option(
            [], "--sandbox", help="also run the sandbox serving these scenario files/folders (repeatable)"
        ),
        port_base: int | None = PortBaseOption,
        config: Path | None = ConfigOption,
    ) -> None:
        """Start every Driftwise process on this machine; stop them all with Ctrl-C."""
        from driftwise.cli import fail, settings_or_exit
        from driftwise.supervisor import StartError, SupervisorError, port_taken, prepare_settings

        settings = settings_or_exit(config)
        for path in sandbox:
            if not path.exists():
                fail(f"--sandbox {path}: no such file or folder", 2)
        # --port-base 0 picks a block that was free a moment ago; another program may take a port of it
        # before every process has bound, so such a start moves once to a new block
        attempts = 2 if port_base == 0 else 1
        try:
            for attempt in range(attempts):
                moved = prepare_settings(settings, port_base=_ports(settings, port_base))
                say_moved("up", port_base, settings, moved)
                try:
                    code = asyncio.run(_up(moved, [p.resolve() for p in sandbox] or None, config))
                    break
                except StartError as exc:
                    if attempt + 1 == attempts or not port_taken(exc):
                        raise
                    typer.echo(f"driftwise up: {exc.name} found its port taken; moving every port to a new block",
                               err=True)
        except StartError as exc:
            tail = "\n".join(exc.output.splitlines()[-15:])
            fail(f"could not start: {exc}" + (f"\n{tail}" if tail else ""))
        except SupervisorError as exc:
            fail(str(exc))
        raise typer.Exit(code)

    @app.command("demo")
    def demo(
        scenarios: Path | None = typer.Option(None, "--scenarios", help="scenario folder (default: the repo's)"),
        scenario: list[str] = typer.Option([], "--scenario", help="scenario id to decide (repeatable)"),
        port_base: int | None = PortBaseOption,
        prometheus: str | None = PrometheusOption,
        keep_state: bool = KeepStateOption,
        config: Path | None = ConfigOption,
    ) -> None:
        """Run everything on the sandbox, decide two drifts (the Friday scale-up, a ConfigMap tweak), explain them."""
        from rich.console import Console

        from driftwise.cli import fail, settings_or_exit
        from driftwise.demo import DEMO_SCENARIOS, run_demo
        from driftwise.evaluation import EvalError
        from driftwise.supervisor import SupervisorError, prepare_settings

        settings = settings_or_exit(config)
        folder = _scenario_folder(scenarios)
        console = Console(width=None if sys.stdout.isatty() else 110)
        started = time.perf_counter()
        announce_autonomous("demo")
        with scratch_state("driftwise-demo-", keep_state) as state:
            try:
                moved = prepare_settings(settings, state_dir=state, port_base=_ports(settings, port_base),
                                         mode="autonomous")
                say_moved("demo", port_base, settings, moved)
                settings = moved
                shown = asyncio.run(run_demo(
                    settings, scenarios_dir=folder, scenario_ids=scenario or list(DEMO_SCENARIOS), console=console,
                    config_file=config, sandbox_args=_sandbox_args(prometheus), ports_picked=port_base == 0,
                ))
            except (EvalError, SupervisorError) as exc:
                fail(f"demo could not run: {exc}")
            except KeyboardInterrupt:
                fail("demo interrupted", 130)
        console.rule()
        typer.echo(f"demo done in {time.perf_counter() - started:.1f}s: "
                   + "; ".join(f"{s.scenario} -> {s.summary} ({s.latency_ms:.0f} ms)" for s in shown))

    @app.command("bench")
    def bench(
        events: int = typer.Option(50, "--events", min=1, max=100_000, help="events per phase"),
        concurrency: int = typer.Option(8, "--concurrency", min=1, max=1000, help="events in flight, phase 2"),
        json_out: Path | None = typer.Option(None, "--json", help="also write the results as JSON here"),
        url: str | None = typer.Option(None, "--url", help="drift agent of a running system (default: start one)"),
        sandbox_url: str | None = typer.Option(None, "--sandbox-url", help="its sandbox (default: argocd.url)"),
        scenario: str = typer.Option("v01-payments-emergency-scale-up", "--scenario", help="scenario to clone"),
        scenarios: Path | None = typer.Option(None, "--scenarios", help="scenario folder (default: the repo's)"),
        prometheus: str | None = PrometheusOption,
        keep_state: bool = KeepStateOption,
        config: Path | None = ConfigOption,
        state_dsn: str | None = typer.Option(
            None, "--state", help="postgresql://… (an empty database): the drift agent keeps its state there "
                                  "(state.dsn); default: SQLite files in the scratch folder"),
        replicas: int = typer.Option(
            1, "--replicas", min=1, max=16, help="drift agents on one state (more than 1 needs --state "
                                                 "postgresql://…); notifications go round-robin over them"),
    ) -> None:
        """Drive the system with N notifications: latency percentiles, decisions per second, CPU per decision,
        memory, with the signing calibration of the same run."""
        import json

        from rich.console import Console

        from driftwise.cli import fail, settings_or_exit
        from driftwise.evaluation import EvalError
        from driftwise.supervisor import SupervisorError, free_port_block, ports_needed, prepare_settings

        settings = settings_or_exit(config)
        if state_dsn is not None:
            settings = _with_state_dsn(settings, state_dsn)
        folder = _scenario_folder(scenarios)
        console = Console(stderr=True)
        with scratch_state("driftwise-bench-", keep_state) as state:
            try:
                if url is None:
                    announce_autonomous("bench")
                    settings = prepare_settings(settings, state_dir=state,
                                                port_base=free_port_block(ports_needed(settings, replicas)),
                                                mode="autonomous")
                elif replicas > 1:
                    fail("--replicas starts its own drift agents: leave out --url", 2)
                result = asyncio.run(_bench(
                    settings, url=url, sandbox_url=sandbox_url, folder=folder, scenario=scenario, events=events,
                    concurrency=concurrency, console=console, config=config, sandbox_args=_sandbox_args(prometheus),
                    replicas=replicas,
                ))
            except (EvalError, SupervisorError) as exc:
                fail(f"bench could not run: {exc}")
            except KeyboardInterrupt:
                fail("bench interrupted", 130)
        from driftwise.bench import render

        render(Console(), result)
        if json_out is not None:
            json_out.write_text(json.dumps(result.as_json(), indent=2))
        typer.echo(result.last_line())


def _with_state_dsn(settings: Any, dsn: str) -> Any:
    from pydantic import ValidationError

    from driftwise.cli import fail
    from driftwise.settings import StateSettings

    try:
        state = StateSettings.model_validate({**settings.state.model_dump(), "dsn": dsn})
    except ValidationError as exc:
        fail(f"--state: {exc.errors()[0]['msg']}", 2)
    return settings.model_copy(update={"state": state})


async def _up(settings: Any, sandbox: list[Path] | None, config: Path | None) -> int:
    from rich.console import Console
    from rich.table import Table

    from driftwise.supervisor import Supervisor, ensure_keys, ensure_tokens, plan_system, prefixed_printer

    created = await asyncio.to_thread(ensure_keys, settings)
    console = Console(stderr=True)
    if created:
        console.print(f"generated signing keys for {', '.join(created)} in {settings.keys_dir}")
    settings, drawn = await asyncio.to_thread(ensure_tokens, settings)
    if drawn:
        console.print(f"generated bearer tokens for {', '.join(drawn)} in {settings.tokens_dir}")
    specs = plan_system(settings, sandbox_paths=sandbox, config_file=config)
    supervisor = Supervisor(specs, sink=prefixed_printer(max(len(s.name) for s in specs) + 1))
    started = time.perf_counter()

    def show_ready() -> None:
        table = Table(title=f"Driftwise is up ({time.perf_counter() - started:.1f}s) — Ctrl-C stops everything",
                      title_justify="left")
        for col in ("process", "pid", "ready in", "checked at"):
            table.add_column(col)
        for c in supervisor.status():
            table.add_row(c["name"], str(c["pid"]), f"{c['ready_s']:.1f}s", c["url"] or "-")
        console.print(table)
        console.print(f"webhook: http://{settings.host}:{settings.drift.port}/v1/webhooks/argocd "
                      f"(token in {settings.tokens_dir / 'webhook'} unless drift.webhook_token is set)")
        modes = "".join(f", {p}: {m}" for p, m in settings.drift.project_modes.items())
        console.print(f"mode: {settings.drift.mode}{modes}"
                      + (" (records only; set drift.mode to act)" if settings.drift.mode == "shadow" else ""))

    code = await supervisor.serve(on_ready=show_ready)
    console.print("every process stopped" if code == 0 else "a process kept failing; everything stopped")
    return code


async def _bench(
    settings: Any, *, url: str | None, sandbox_url: str | None, folder: Path, scenario: str, events: int,
    concurrency: int, console: Any, config: Path | None, sandbox_args: list[str] | None, replicas: int = 1,
) -> Any:
    import dataclasses

    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftwise.bench import drive, listening_pids
    from driftwise.evaluation import Endpoints, SystemClient, running_system

    timeout = settings.drift.decision_deadline_s * 2 + 10
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    from driftwise.benchmarks import signing
    from driftwise.supervisor import drift_replicas

    async def run(endpoints: Endpoints, pids: dict[str, int], startup: float | None,
                  replica_urls: list[str] | None = None) -> Any:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False,
                                     limits=httpx.Limits(max_connections=concurrency + 10)) as http:
            clients = [SystemClient(http, dataclasses.replace(endpoints, drift_url=u))
                       for u in replica_urls or [endpoints.drift_url]]
            replica_pids = [pid for name, pid in pids.items() if name.startswith("drift")]
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("events", total=2 * events)
                result = await drive(clients, scenario=scenario, events=events, concurrency=concurrency,
                                     timeout_s=timeout, pids=pids, on_progress=lambda: progress.advance(task),
                                     replica_pids=replica_pids)
        # the calibration after the load, on the same machine in the same run (machines differ ~4x)
        calibration = await asyncio.to_thread(signing.run, 1000)
        return dataclasses.replace(result, startup_s=startup, calibration=calibration)

    if url is not None:
        from driftwise.tokens import local_tokens

        base = Endpoints.from_settings(local_tokens(settings, create=False)[0])  # tokens a local `up` drew
        endpoints = dataclasses.replace(base, drift_url=url.rstrip("/"),
                                        sandbox_url=(sandbox_url or settings.argocd.url).rstrip("/"))
        port = httpx.URL(url).port or 80
        return await run(endpoints, await asyncio.to_thread(listening_pids, {"drift": port}), None)

    started = time.perf_counter()
    async with running_system(settings, sandbox_paths=[folder], console=console, config_file=config,
                              sandbox_args=sandbox_args, move_ports_on_conflict=True, replicas=replicas) as system:
        urls = [f"http://{r.host}:{r.drift.port}" for r in drift_replicas(system.settings, replicas)]
        return await run(Endpoints.from_settings(system.settings), system.supervisor.pids(),
                         time.perf_counter() - started, urls)
