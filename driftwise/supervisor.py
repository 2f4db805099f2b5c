"""The local process supervisor: every Driftwise part as its own OS process on loopback.

`plan_system()` turns settings into one `ProcessSpec` per process (sandbox when asked, the four
MCP servers, each enabled specialist, the drift agent); `Supervisor` starts them concurrently,
waits (bounded) until each answers its readiness check, prefixes every line a child writes with
its name, restarts a child that dies (bounded backoff, bounded count) and stops them all on
request. Children get their configuration as DRIFTWISE_* variables holding the parent's
effective settings (plus `--config FILE` when one was given), so a child sees exactly what the
parent decided — ports moved for a test included.

Errors: `SupervisorError` (base) and `StartError` (a named process exited or never became ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr

from driftwise import ports
from driftwise.ports import free_port as free_port  # re-exported: the one way to pick a port
from driftwise.settings import SANDBOX_PORT, Settings

log = logging.getLogger(__name__)

MCP_SERVERS = ("prometheus", "grafana", "pagerduty", "kubernetes")
DRIFT = "drift"
SANDBOX = "sandbox"
# Who needs whom: the MCP servers read the sandbox's backends, the specialists call the MCP servers
# (and each other), the drift agent calls them all. Ctrl-C stops them from the top down.
TIER_SANDBOX, TIER_MCP, TIER_SPECIALISTS, TIER_DRIFT = 0, 1, 2, 3


class SupervisorError(Exception):
    """The supervisor could not do what it was asked; the message names the process and the cause."""


class StartError(SupervisorError):
    """A process exited or did not become ready in time."""

    def __init__(self, name: str, cause: str, output: str = "") -> None:
        detail = f"{name} {cause}"
        super().__init__(detail)
        self.name = name
        self.cause = cause
        self.output = output


class Readiness(StrEnum):
    HTTP_OK = "http_ok"
    """2xx only: an agent's /healthz or the sandbox's /sandbox/healthz."""
    ANSWERS = "answers"
    """any status below 500 (an MCP endpoint answers a bare GET with 400/401/405/406)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One child: how to start it and how to tell it is ready."""

    name: str
    argv: list[str]
    ready_url: str | None = None
    readiness: Readiness = Readiness.HTTP_OK
    env: Mapping[str, str] = field(default_factory=dict)
    inherit_env: bool = True
    """False: `env` is the child's whole environment (it already holds what it should inherit)."""
    cwd: Path | None = None
    tier: int = 0
    """Dependency order: a process may need those of lower tiers; stop() stops the highest tier first."""


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class Child:
    """A supervised process and what is known about it."""

    spec: ProcessSpec
    state: State = State.STOPPED
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    ready_s: float | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    left_down: bool = False
    """Killed on purpose (Supervisor.kill) and not to be restarted."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def output(self) -> str:
        return "\n".join(self.tail)


LineSink = Callable[[str, str], None]
"""Receives (process name, one line of its output)."""


def prefixed_printer(width: int = 12, stream: Any = None) -> LineSink:
    """A sink writing `name | line` so interleaved logs stay readable."""
    out = stream if stream is not None else sys.stdout

    def sink(name: str, line: str) -> None:
        out.write(f"{name:<{width}} | {line}\n")
        out.flush()

    return sink


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: if the supervisor is killed outright, the kernel
    # sends the child SIGTERM, so no orphan keeps a port.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Starts, watches, restarts and stops a set of child processes."""

    def __init__(
        self,
        specs: list[ProcessSpec],
        *,
        sink: LineSink | None = None,
        ready_timeout_s: float = 60.0,
        stop_timeout_s: float = 8.0,
        max_restarts: int = 5,
        backoff_s: tuple[float, float] = (0.5, 8.0),
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise SupervisorError(f"process names must be unique, got {names}")
        self.children: dict[str, Child] = {s.name: Child(s) for s in specs}
        self._sink = sink or (lambda _n, _l: None)
        self._ready_timeout_s = ready_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._max_restarts = max_restarts
        self._backoff = backoff_s
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []
        self._pumps: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.failed = asyncio.Event()
        """Set when a child died more often than `max_restarts` allows."""

    # --- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every child concurrently; return when all are ready, or raise StartError naming one."""
        self._http = httpx.AsyncClient(timeout=1.0, trust_env=False)
        try:
            await asyncio.gather(*(self._spawn(c) for c in self.children.values()))
            waits = [asyncio.create_task(self._await_ready(c)) for c in self.children.values()]
            # The first failure ends the start-up at once: no waiting out the others' deadlines.
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            failures = [t.exception() for t in done if t.exception() is not None]
            if failures:
                raise failures[0]  # type: ignore[misc]
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, SupervisorError | asyncio.CancelledError | KeyboardInterrupt):
                raise
            raise SupervisorError(f"start-up failed: {exc!r}") from exc
        self._watchers = [asyncio.create_task(self._watch(c), name=f"watch-{c.spec.name}")
                          for c in self.children.values()]

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        env = {**(os.environ if spec.inherit_env else {}), **spec.env, "PYTHONUNBUFFERED": "1"}
        child.ready_event.clear()
        child.state = State.STARTING
        child.started_at = time.monotonic()
        child.ready_s = None
        try:
            child.process = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=spec.cwd,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
                preexec_fn=_set_pdeathsig if sys.platform == "linux" else None,
            )
        except OSError as exc:
            child.state = State.FAILED
            raise StartError(spec.name, f"could not be started ({spec.argv[0]}): {exc}") from exc
        pump = asyncio.create_task(self._pump(child, child.process), name=f"pump-{spec.name}")
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)

    async def _pump(self, child: Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line longer than the stream limit: skip it rather than stall the child
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            self._sink(child.spec.name, line)

    async def _await_ready(self, child: Child) -> None:
        spec = child.spec
        process = child.process
        assert process is not None
        deadline = time.monotonic() + self._ready_timeout_s
        delay = 0.05
        while True:
            if process.returncode is not None:
                await self._drain(child)
                child.state = State.FAILED
                raise StartError(spec.name, f"exited with status {process.returncode} before it was ready",
                                 child.output())
            if await self._is_ready(spec):
                child.state = State.READY
                child.ready_s = time.monotonic() - child.started_at
                child.ready_event.set()
                return
            if time.monotonic() > deadline:
                child.state = State.FAILED
                raise StartError(spec.name, f"was not ready at {spec.ready_url} within {self._ready_timeout_s:.0f}s",
                                 child.output())
            # Wake early when the child exits rather than sleeping out the delay.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), delay)
            delay = min(delay * 1.5, 0.1)

    async def _is_ready(self, spec: ProcessSpec) -> bool:
        if spec.ready_url is None:
            return True
        assert self._http is not None
        try:
            response = await self._http.get(spec.ready_url)
        except httpx.HTTPError:
            return False
        if spec.readiness is Readiness.ANSWERS:
            return response.status_code < 500
        return 200 <= response.status_code < 300

    async def _drain(self, child: Child) -> None:
        # Let the pump read what a dying child wrote last, so the error shows it.
        pumps = [t for t in self._pumps if t.get_name() == f"pump-{child.spec.name}"]
        if pumps:
            await asyncio.wait(pumps, timeout=1.0)

    # --- watch and restart ---------------------------------------------------------------------

    async def _watch(self, child: Child) -> None:
        window_start = time.monotonic()
        recent = 0
        while not self._stopping:
            process = child.process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            await self._drain(child)
            if child.left_down:
                child.state = State.STOPPED
                self._sink("supervisor", f"{child.spec.name} killed ({code}); left down, as asked")
                return
            if time.monotonic() - window_start > 120:
                window_start, recent = time.monotonic(), 0
            recent += 1
            if recent > self._max_restarts:
                child.state = State.FAILED
                self._sink("supervisor", f"{child.spec.name} exited ({code}) {recent - 1} times in a row; giving up")
                self.failed.set()
                return
            delay = min(self._backoff[0] * 2 ** (recent - 1), self._backoff[1])
            child.state = State.RESTARTING
            self._sink("supervisor", f"{child.spec.name} exited ({code}); restarting in {delay:.1f}s")
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn(child)
                await self._await_ready(child)
            except StartError as exc:
                self._sink("supervisor", f"restart failed: {exc}")
                continue
            child.restarts += 1
            self._sink("supervisor", f"{child.spec.name} ready again (pid {child.pid}, restart {child.restarts})")

    def kill(self, name: str) -> int:
        """SIGKILL one child and leave it down (a replica lost for good); its pid."""
        child = self.children[name]
        pid = child.pid
        if pid is None:
            raise SupervisorError(f"{name} has no process to kill")
        child.left_down = True
        os.kill(pid, signal.SIGKILL)
        return pid

    # --- stop ----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every child in dependency order, the reverse of `specs` (each waits for the ones after it:
        the drift agent first, the sandbox last), so that no process loses a peer while it still runs:
        SIGTERM, wait (bounded), SIGKILL what remains. Idempotent."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers = []
        for tier in reversed(self._tiers()):
            await asyncio.gather(*(self._stop_child(self.children[name]) for name in tier))
        if self._pumps:
            await asyncio.wait(list(self._pumps), timeout=1.0)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _tiers(self) -> list[list[str]]:
        """Children grouped by `ProcessSpec.tier`, lowest (started as dependencies of the rest) first."""
        tiers: dict[int, list[str]] = {}
        for name, child in self.children.items():
            tiers.setdefault(child.spec.tier, []).append(name)
        return [tiers[t] for t in sorted(tiers)]

    async def _stop_child(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            child.state = State.STOPPED
            return
        self._sink("supervisor", f"stopping {child.spec.name}")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._stop_timeout_s)
        except TimeoutError:
            self._sink("supervisor", f"{child.spec.name} ignored SIGTERM for {self._stop_timeout_s:.0f}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        child.state = State.STOPPED

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start everything, call `on_ready`, run until SIGINT/SIGTERM; always stop every child.

        Returns 0 after a signal, 1 when a child failed for good. Signals are handled from the
        first moment, so a Ctrl-C during start-up stops what was already started. A start-up
        failure raises StartError.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            starting = asyncio.create_task(self.start())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([starting, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                stopper.cancel()
                return 0
            starting.result()
            if on_ready is not None:
                on_ready()
            failed = asyncio.create_task(self.failed.wait())
            await asyncio.wait([stopper, failed], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            failed.cancel()
            return 1 if self.failed.is_set() and not stop.is_set() else 0
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()

    def status(self) -> list[dict[str, Any]]:
        return [
            {"name": c.spec.name, "state": c.state.value, "pid": c.pid, "restarts": c.restarts,
             "ready_s": c.ready_s, "url": c.spec.ready_url}
            for c in self.children.values()
        ]

    def pids(self) -> dict[str, int]:
        return {n: c.pid for n, c in self.children.items() if c.pid is not None and c.state is not State.STOPPED}


# --- the system's processes ------------------------------------------------------------------


def free_port_block(n: int, host: str = "127.0.0.1") -> int:
    """A base port whose next n-1 ports are free (driftwise.ports), or SupervisorError."""
    try:
        return ports.free_port_block(n, host)
    except ports.PortsError as exc:
        raise SupervisorError(str(exc)) from exc


def enabled_specialists(settings: Settings) -> list[str]:
    return [name for name, spec in settings.specialists.items() if spec.enabled]


def ports_needed(settings: Settings, replicas: int = 1) -> int:
    """How many ports a contiguous layout uses: sandbox 5, drift 1, specialists, MCP servers 4, then one per
    further drift-agent replica."""
    return 5 + 1 + len(enabled_specialists(settings)) + len(MCP_SERVERS) + replicas - 1


def replica_name(index: int) -> str:
    """The process name of drift-agent replica `index` (0-based): `drift`, then `drift-2`, `drift-3`, …"""
    return DRIFT if index == 0 else f"{DRIFT}-{index + 1}"


def drift_replicas(settings: Settings, n: int) -> list[Settings]:
    """The settings of each of `n` drift-agent replicas on one state: the first on drift.port, the others on
    the ports after the contiguous layout (relocate's block, taken with ports_needed(settings, n)), each with
    a replica id of its own (the owner of its leases). n > 1 needs state.dsn: replicas share PostgreSQL."""
    if n < 1:
        raise SupervisorError(f"{n} drift-agent replicas: give 1 or more")
    if n > 1 and settings.state.dsn is None:
        raise SupervisorError(f"{n} drift-agent replicas need one PostgreSQL to share: set state.dsn "
                              "(postgresql://…); the SQLite default is for one drift agent")
    after = sandbox_base_port(settings) + ports_needed(settings)
    replicas = []
    for i in range(n):
        port = settings.drift.port if i == 0 else after + i - 1
        replica_id = settings.drift.replica_id
        if n > 1:
            replica_id = f"{replica_id}-{i + 1}" if replica_id else replica_name(i)
        replicas.append(settings.model_copy(update={
            "drift": settings.drift.model_copy(update={"port": port, "replica_id": replica_id})}))
    return replicas


def relocate(settings: Settings, base: int) -> Settings:
    """The same settings with every loopback port moved into one block starting at `base`.

    Layout: sandbox base..base+4 (Argo CD, Kubernetes, Prometheus, Grafana, PagerDuty),
    drift base+5, then each specialist, then the MCP servers.
    """
    host = settings.host
    update: dict[str, Any] = {
        "argocd": settings.argocd.model_copy(update={"url": f"http://{host}:{base}"}),
        "kubernetes": settings.kubernetes.model_copy(update={"url": f"http://{host}:{base + 1}"}),
        "prometheus": settings.prometheus.model_copy(update={"url": f"http://{host}:{base + 2}"}),
        "grafana": settings.grafana.model_copy(update={"url": f"http://{host}:{base + 3}"}),
        "pagerduty": settings.pagerduty.model_copy(update={"url": f"http://{host}:{base + 4}"}),
        "drift": settings.drift.model_copy(
            update={"port": base + 5, "sandbox_clock_url": f"http://{host}:{base}/sandbox/clock"}
        ),
    }
    port = base + 6
    specialists = {}
    for name, spec in settings.specialists.items():
        if spec.enabled:
            specialists[name] = spec.model_copy(update={"port": port})
            port += 1
        else:
            specialists[name] = spec
    update["specialists"] = specialists
    mcp_update = {}
    for name in MCP_SERVERS:
        mcp_update[name] = getattr(settings.mcp, name).model_copy(update={"port": port})
        port += 1
    update["mcp"] = settings.mcp.model_copy(update=mcp_update)
    return settings.model_copy(update=update)


def sandbox_base_port(settings: Settings) -> int:
    """The sandbox's base port, read from where the settings say Argo CD is."""
    return httpx.URL(settings.argocd.url).port or SANDBOX_PORT


def _plain(value: Any) -> Any:
    """A settings value as plain JSON data, secrets revealed (they go to our own children only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_env(settings: Settings, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """DRIFTWISE_* variables that reproduce `settings` exactly in a child process.

    Each top-level setting becomes one variable (sections as JSON, which pydantic-settings
    parses); the caller's own DRIFTWISE_<setting> variables are dropped because the values here
    already include them, and a nested `__` variable would otherwise be merged over them.
    """
    fields = list(type(settings).model_fields)
    prefixes = tuple(f"DRIFTWISE_{f.upper()}" for f in fields)
    env = {
        k: v for k, v in (base_env if base_env is not None else os.environ).items()
        if not (k.startswith(prefixes) and (k in prefixes or k.split("__", 1)[0] in prefixes))
    }
    for name in fields:
        value = _plain(getattr(settings, name))
        env[f"DRIFTWISE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def plan_system(
    settings: Settings,
    *,
    sandbox_paths: list[Path] | None = None,
    sandbox_args: list[str] | None = None,
    config_file: Path | None = None,
    python: str = sys.executable,
    replicas: int = 1,
) -> list[ProcessSpec]:
    """One ProcessSpec per process of the system; the sandbox only when `sandbox_paths` is given; `replicas`
    drift agents (drift_replicas)."""
    host = settings.host
    env = settings_env(settings)
    config = ["--config", str(config_file)] if config_file is not None else []
    base = [python, "-m", "driftwise"]
    specs: list[ProcessSpec] = []
    if sandbox_paths is not None:
        port = sandbox_base_port(settings)
        specs.append(ProcessSpec(
            name=SANDBOX,
            argv=[*base, "sandbox", *map(str, sandbox_paths), "--host", host, "--port", str(port),
                  *(sandbox_args or [])],
            ready_url=f"http://{host}:{port}/sandbox/healthz",
            env=env,
            inherit_env=False,
            tier=TIER_SANDBOX,
        ))
    for name in MCP_SERVERS:
        server = getattr(settings.mcp, name)
        specs.append(ProcessSpec(
            name=f"mcp-{name}",
            argv=[*base, "mcp", name, "--transport", "http", "--port", str(server.port), *config],
            ready_url=server.url(host),
            readiness=Readiness.ANSWERS,
            env=env,
            inherit_env=False,
            tier=TIER_MCP,
        ))
    for name in enabled_specialists(settings):
        spec = settings.specialists[name]
        specs.append(ProcessSpec(
            name=name,
            argv=[*base, "agent", name, "--port", str(spec.port), *config],
            ready_url=f"{spec.url(host)}/healthz",
            env=env,
            inherit_env=False,
            tier=TIER_SPECIALISTS,
        ))
    for i, replica in enumerate(drift_replicas(settings, replicas)):
        specs.append(ProcessSpec(
            name=replica_name(i),
            argv=[*base, "agent", DRIFT, "--port", str(replica.drift.port), *config],
            ready_url=f"http://{host}:{replica.drift.port}/healthz",
            env=env if replicas == 1 else settings_env(replica),
            tier=TIER_DRIFT,
        ))
    return specs


def ensure_keys(settings: Settings) -> list[str]:
    """Key pairs for the drift agent and every enabled specialist, and a trust store pinning them all.

    Keys are generated only when missing (first run); the trust store is (re)built from the
    public keys on disk so that it always pins exactly the agents that will run. Returns the
    agents whose keys were generated now.
    """
    from protocol.signing import TrustStore, generate_key, load_private_key, write_key_pair

    keys_dir = settings.keys_dir
    keys_dir.mkdir(parents=True, exist_ok=True)
    created: list[str] = []
    store = TrustStore.load(settings.trust_store_path) if settings.trust_store_path.exists() else TrustStore()
    for agent in [DRIFT, *enabled_specialists(settings)]:
        private = keys_dir / f"{agent}.private.jwk.json"
        if private.exists():
            key = load_private_key(private)
        else:
            key = generate_key(agent)
            write_key_pair(key, agent, keys_dir)
            created.append(agent)
        store.add(agent, key)
    store.save(settings.trust_store_path)
    return created


def ensure_tokens(settings: Settings) -> tuple[Settings, list[str]]:
    """Settings with a token for every role they leave unset, drawn into <state_dir>/tokens/ on first
    run; and the roles drawn now."""
    from driftwise.settings import ConfigError
    from driftwise.tokens import local_tokens

    try:
        return local_tokens(settings, create=True)
    except ConfigError as exc:
        raise SupervisorError(str(exc)) from exc


# --- the whole system, for one command --------------------------------------------------------


def prepare_settings(
    settings: Settings,
    *,
    state_dir: Path | None = None,
    port_base: int | None = None,
    mode: str | None = None,
    llm: bool | None = None,
) -> Settings:
    """Settings for a run: ports moved into one block, state elsewhere, a forced mode, LLM on or off.

    `llm=False` clears `llm.base_url` so the drift agent uses the rules reasoner whatever the
    config says; `llm=True` keeps it (the caller checks it is set).
    """
    if port_base is not None:
        settings = relocate(settings, port_base)
    update: dict[str, Any] = {}
    if state_dir is not None:
        update["state_dir"] = state_dir
    if mode is not None:
        update["drift"] = settings.drift.model_copy(update={"mode": mode, "project_modes": {}})
    if llm is False:
        update["llm"] = settings.llm.model_copy(update={"base_url": None})
    return settings.model_copy(update=update) if update else settings


def file_sink(path: Path, width: int = 14) -> tuple[LineSink, Callable[[], None]]:
    """A sink appending `name | line` to a file (children's logs during eval, demo and bench)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", buffering=1, encoding="utf-8")

    def sink(name: str, line: str) -> None:
        handle.write(f"{name:<{width}} | {line}\n")

    return sink, handle.close


@dataclass(frozen=True)
class LocalSystem:
    """The running system: its supervisor, and the settings it really runs with (ports may have moved)."""

    supervisor: Supervisor
    settings: Settings


def port_taken(exc: StartError) -> bool:
    """The start failed because another program holds a port (the block was free when it was picked)."""
    return "address already in use" in exc.output.lower()


@contextlib.asynccontextmanager
async def local_system(
    settings: Settings,
    *,
    sandbox_paths: list[Path] | None,
    sink: LineSink | None = None,
    config_file: Path | None = None,
    sandbox_args: list[str] | None = None,
    ready_timeout_s: float = 90.0,
    move_ports_on_conflict: bool = False,
    replicas: int = 1,
) -> AsyncIterator[LocalSystem]:
    """Keys ready, every process started and ready; stopped on exit whatever happened.

    With `move_ports_on_conflict` (ports picked as free a moment ago, which another program may
    have taken since), a start that fails on a taken port is retried once on a new free block.
    """
    await asyncio.to_thread(ensure_keys, settings)
    settings, _ = await asyncio.to_thread(ensure_tokens, settings)
    attempts = 2 if move_ports_on_conflict else 1
    for attempt in range(attempts):
        specs = plan_system(settings, sandbox_paths=sandbox_paths, sandbox_args=sandbox_args,
                            config_file=config_file, replicas=replicas)
        supervisor = Supervisor(specs, sink=sink, ready_timeout_s=ready_timeout_s)
        try:
            await supervisor.start()
            break
        except StartError as exc:
            if attempt + 1 == attempts or not port_taken(exc):
                raise
            if sink is not None:
                sink("supervisor", f"{exc.name} found its port taken; moving every port to a new block")
            settings = relocate(settings, free_port_block(ports_needed(settings, replicas)))
    try:
        yield LocalSystem(supervisor, settings)
    finally:
        await supervisor.stop()
