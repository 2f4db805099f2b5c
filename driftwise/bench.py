"""`driftwise bench`: webhook-to-verdict latency, throughput and memory of the whole system.

N events at concurrency 1 give the latency percentiles: webhook -> verdict (the guardrail's signed
verdict, recorded before it is acted on) and webhook -> final (carried out in the configured mode),
each seen through the decisions API's long poll, so no polling interval is in the numbers. N more
at concurrency K give decisions per second (to final). Every event is its own application: the
sandbox clones one scenario under distinct names (POST /sandbox/clones), so no notification is a
duplicate of another. Memory is the peak RSS of each process (with its children), sampled while
the events run.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from driftwise.evaluation import EvalError, SystemClient, final_action

DEFAULT_SCENARIO = "v01-payments-emergency-scale-up"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class BenchResult:
    events: int
    concurrency: int
    cold_ms: float
    latencies_ms: list[float]
    """Webhook -> verdict (signed, guardrailed, recorded) as the client sees it, concurrency 1."""
    final_ms: list[float]
    """Webhook -> final (the verdict carried out in the configured mode), concurrency 1."""
    server_ms: list[float]
    throughput_s: float
    wall_s: float
    actions: dict[str, int]
    failures: list[str] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    startup_s: float | None = None
    replicas: int = 1
    cpu_ms_per_decision: float | None = None
    """CPU time (user + system) of the drift-agent replicas over the concurrent phase, per decision."""
    system_cpu_ms_per_decision: float | None = None
    """The same for every process of the system (sandbox, MCP servers, specialists, replicas)."""
    calibration: dict[str, float] = field(default_factory=dict)
    """driftwise.benchmarks.signing in the same run: quote ratios against it, never bare numbers."""

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q) if self.latencies_ms else float("nan")

    def last_line(self) -> str:
        cpu = f" cpu_ms_per_decision={self.cpu_ms_per_decision:.1f}" if self.cpu_ms_per_decision is not None else ""
        sign = f" sign_p50_us={self.calibration['sign_p50_us']:.1f}" if self.calibration else ""
        return (f"replicas={self.replicas} p50_ms={self.p(50):.1f} p99_ms={self.p(99):.1f} "
                f"decisions_per_s={self.throughput_s:.2f}{cpu}{sign}")

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events, "concurrency": self.concurrency, "cold_ms": self.cold_ms,
            "p50_ms": self.p(50), "p95_ms": self.p(95), "p99_ms": self.p(99),
            "latencies_ms": self.latencies_ms,
            "final_p50_ms": percentile(self.final_ms, 50) if self.final_ms else None,
            "final_p99_ms": percentile(self.final_ms, 99) if self.final_ms else None,
            "server_p50_ms": percentile(self.server_ms, 50) if self.server_ms else None,
            "decisions_per_s": self.throughput_s, "wall_s": self.wall_s,
            "actions": self.actions, "failures": self.failures, "peak_rss_mb": self.peak_rss_mb,
            "startup_s": self.startup_s, "replicas": self.replicas,
            "cpu_ms_per_decision": self.cpu_ms_per_decision,
            "system_cpu_ms_per_decision": self.system_cpu_ms_per_decision, "calibration": self.calibration,
        }


class MemorySampler:
    """Peak RSS per named process tree, sampled in a worker thread so the event loop never blocks."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.25) -> None:
        self._pids = pids
        self._interval = interval_s
        self.peak_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        for name, pid in self._pids.items():
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True)
                )
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self.peak_mb[name] = max(self.peak_mb[name], rss / 2**20)

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self._sample)
            await asyncio.sleep(self._interval)

    def __enter__(self) -> MemorySampler:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self._sample()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes (and their children) have used so far; a gone one counts 0."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                times = p.cpu_times()
                total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def listening_pids(ports: dict[str, int]) -> dict[str, int]:
    """Which local process listens on each port (for `--url`, when we did not start the processes)."""
    found: dict[str, int] = {}
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return found
    by_port = {c.laddr.port: c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.pid}
    for name, port in ports.items():
        if port in by_port:
            found[name] = by_port[port]
    return found


@dataclass(frozen=True)
class _Timed:
    verdict_ms: float
    final_ms: float
    action: str
    server_ms: float | None


async def _one(client: SystemClient, notification: dict[str, Any], timeout_s: float) -> _Timed:
    """One notification: webhook -> verdict, then -> final, each seen through a long poll (no polling lag)."""
    started = time.perf_counter()
    ack = await client.notify(notification)
    if ack.duplicate:
        raise EvalError(f"notification for {notification.get('app')} was taken as a duplicate")
    await client.wait_final(ack.event_id, timeout_s, until="verdict")
    verdict_ms = (time.perf_counter() - started) * 1000
    decision = await client.wait_final(ack.event_id, timeout_s)
    final_ms = (time.perf_counter() - started) * 1000
    got = final_action(decision)
    return _Timed(verdict_ms, final_ms, got.value if got is not None else "none",
                  decision.timings_ms.get("webhook_to_verdict"))


async def drive(
    client: SystemClient | list[SystemClient],
    *,
    scenario: str,
    events: int,
    concurrency: int,
    timeout_s: float,
    pids: dict[str, int],
    on_progress: Any = None,
    replica_pids: list[int] | None = None,
) -> BenchResult:
    """Both phases; with one client per drift-agent replica, notifications go round-robin over them (each
    followed on the replica that took it), and CPU per decision is measured over `replica_pids`."""
    clients = client if isinstance(client, list) else [client]
    client = clients[0]
    apps = await client.clones(scenario, 2 * events + 1)
    notes = [a["notification"] for a in apps]
    if len({(n.get("appNamespace"), n.get("app")) for n in notes}) < 2 * events + 1:
        raise EvalError(f"the sandbox returned {len(notes)} applications for {2 * events + 1} clones "
                        "(expected distinct ones)")
    warm, serial, parallel = notes[0], notes[1: events + 1], notes[events + 1: 2 * events + 1]
    actions: dict[str, int] = {}
    failures: list[str] = []
    with MemorySampler(pids) as memory:
        # The first decision pays lazy imports and session set-up; it is reported apart.
        cold_ms = (await _one(client, warm, timeout_s)).verdict_ms
        latencies: list[float] = []
        finals: list[float] = []
        server: list[float] = []
        for n, note in enumerate(serial):
            try:
                timed = await _one(clients[n % len(clients)], note, timeout_s)
            except EvalError as exc:
                failures.append(str(exc))
                continue
            latencies.append(timed.verdict_ms)
            finals.append(timed.final_ms)
            if timed.server_ms is not None:
                server.append(timed.server_ms)
            actions[timed.action] = actions.get(timed.action, 0) + 1
            if on_progress:
                on_progress()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for note in parallel:
            queue.put_nowait(note)
        done = 0

        async def worker(mine: SystemClient) -> None:
            nonlocal done
            while not queue.empty():
                note = queue.get_nowait()
                try:
                    timed = await _one(mine, note, timeout_s)
                except EvalError as exc:
                    failures.append(str(exc))
                    continue
                done += 1
                actions[timed.action] = actions.get(timed.action, 0) + 1
                if on_progress:
                    on_progress()

        mine, everyone = replica_pids or [], list(pids.values())
        cpu_before = await asyncio.to_thread(lambda: (cpu_seconds(mine), cpu_seconds(everyone)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
        wall = time.perf_counter() - started
        cpu_after = await asyncio.to_thread(lambda: (cpu_seconds(mine), cpu_seconds(everyone)))

    def per_decision(i: int) -> float | None:
        return (cpu_after[i] - cpu_before[i]) * 1000 / done if done else None

    return BenchResult(
        events=events, concurrency=concurrency, cold_ms=cold_ms, latencies_ms=latencies, final_ms=finals,
        server_ms=server, throughput_s=done / wall if wall > 0 else 0.0, wall_s=wall, actions=actions,
        failures=failures, peak_rss_mb=memory.peak_mb, replicas=len(clients),
        cpu_ms_per_decision=per_decision(0) if mine else None, system_cpu_ms_per_decision=per_decision(1),
    )


def render(console: Any, result: BenchResult) -> None:
    from rich.table import Table

    lat = Table(title="webhook -> verdict (signed, guardrailed, recorded)", title_justify="left")
    for col in ("measure", "value"):
        lat.add_column(col)
    lat.add_row("first (cold) decision", f"{result.cold_ms:.1f} ms")
    lat.add_row("p50 at concurrency 1", f"{result.p(50):.1f} ms")
    lat.add_row("p95 at concurrency 1", f"{result.p(95):.1f} ms")
    lat.add_row("p99 at concurrency 1", f"{result.p(99):.1f} ms")
    if result.server_ms:
        lat.add_row("p50 as the drift agent stamps it", f"{percentile(result.server_ms, 50):.1f} ms")
    if result.final_ms:
        lat.add_row("p50 / p99 to final (verdict carried out)",
                    f"{percentile(result.final_ms, 50):.1f} / {percentile(result.final_ms, 99):.1f} ms")
    lat.add_row(f"decisions/s at concurrency {result.concurrency}"
                + (f", {result.replicas} replicas" if result.replicas > 1 else ""), f"{result.throughput_s:.2f}")
    if result.cpu_ms_per_decision is not None:
        lat.add_row("CPU per decision, drift agent(s)", f"{result.cpu_ms_per_decision:.1f} ms")
    if result.system_cpu_ms_per_decision is not None:
        lat.add_row("CPU per decision, every process", f"{result.system_cpu_ms_per_decision:.1f} ms")
    if result.calibration:
        lat.add_row("calibration: Ed25519 JWS sign p50 (same run)", f"{result.calibration['sign_p50_us']:.1f} µs")
    lat.add_row("final actions", ", ".join(f"{k} {v}" for k, v in sorted(result.actions.items())))
    if result.startup_s is not None:
        lat.add_row("system start-up", f"{result.startup_s:.1f} s")
    console.print(lat)
    if result.peak_rss_mb:
        mem = Table(title="peak memory (RSS)", title_justify="left")
        mem.add_column("process")
        mem.add_column("MiB", justify="right")
        for name, mb in result.peak_rss_mb.items():
            mem.add_row(name, f"{mb:.0f}")
        mem.add_row("[bold]total[/]", f"[bold]{sum(result.peak_rss_mb.values()):.0f}[/]")
        console.print(mem)
    for failure in result.failures[:5]:
        console.print(f"[red]failed:[/] {failure}")
