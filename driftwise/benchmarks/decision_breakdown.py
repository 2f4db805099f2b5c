"""Where the time of one drift decision goes: webhook -> final verdict, per stage, per process.

Starts the whole system as separate processes (sandbox with builtin Prometheus, four MCP servers,
security, compliance, drift agent; driftwise.supervisor), then for each chosen scenario clones it
(POST /sandbox/clones) and posts the clones' notifications one at a time (concurrency 1). Prints:

- webhook -> final as the client sees it (post -> the decisions API's long poll answers) and as the
  drift agent stamps it (Decision.timings_ms["webhook_to_final"]: received_at -> decision recorded;
  "webhook_to_verdict": received_at -> the guardrail's verdict recorded, before it is acted on);
- a per-stage breakdown from Decision.timings_ms (one entry per graph node), plus two derived
  stages: `checkpoints+graph` (the decision's time outside its nodes: LangGraph, its SQLite
  checkpoint writes, the `deciding` save) and `intake+record` (webhook_to_final minus the decision:
  the wait before the decision task starts and the audit append of `decision`);
- CPU (user+system) per decision of every process, read from the OS around the measured
  decisions: on a shared 2-core machine wall-clock latency mostly says who else was running, CPU
  per decision says what a change saved;
- with `--profile`, a py-spy sampling profile of every process during the measured decisions
  (py-spy must be installed: `pip install py-spy`), summarised as the top functions by inclusive
  and by own time; with `--cprofile NAME` (repeatable), that process runs under cProfile
  (driftwise.benchmarks.profiled) and its stats are printed; raw files stay in the state folder.

    python -m driftwise.benchmarks.decision_breakdown [--events 20] [--scenario ID ...] [--profile]
    python -m driftwise.benchmarks.decision_breakdown --events 40 --scenario v01-payments-emergency-scale-up \
        --cprofile drift --cprofile security
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from driftwise.evaluation import Endpoints, SystemClient, final_action
from driftwise.settings import Settings
from driftwise.supervisor import (
    Supervisor,
    ensure_keys,
    file_sink,
    free_port_block,
    plan_system,
    ports_needed,
    prepare_settings,
)
from protocol.models import Decision

ROOT = Path(__file__).resolve().parents[2]
NODES = ("observe", "gather", "delegate", "reason", "sign", "guardrail", "request_approval", "approve", "apply")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def one(client: SystemClient, notification: dict[str, Any], timeout_s: float) -> tuple[float, Decision]:
    started = time.perf_counter()
    ack = await client.notify(notification)
    if ack.duplicate:
        raise RuntimeError(f"notification for {notification.get('app')} taken as a duplicate")
    decision = await client.wait_final(ack.event_id, timeout_s)  # a long poll: no polling lag, no GET load
    return (time.perf_counter() - started) * 1000, decision


def stages(decision: Decision) -> dict[str, float]:
    t = decision.timings_ms
    out = {n: t[n] for n in NODES if n in t}
    if "decision" in t:
        out["checkpoints+graph"] = max(0.0, t["decision"] - sum(out.values()))
        if "webhook_to_final" in t:
            out["intake+record"] = max(0.0, t["webhook_to_final"] - t["decision"])
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User+system CPU seconds each process has used so far: the cost of a decision, whatever the load.

    Wall-clock latency on a busy 2-core machine mostly measures who else runs; CPU time per decision
    per process does not, so it is what a change is judged by.
    """
    import psutil

    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out[name] = t.user + t.system
    return out


class Profiler:
    """py-spy record on each process (raw collapsed stacks), stopped with SIGINT so it writes its file."""

    def __init__(self, pids: dict[str, int], folder: Path, rate: int, gil: bool = False) -> None:
        self.pids = pids
        self.gil = gil
        self.folder = folder
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        for name, pid in self.pids.items():
            out = self.folder / f"{name}.collapsed"
            self.procs[name] = subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--output", str(out),
                 "--nonblocking", *(["--gil"] if self.gil else [])],
                stdout=subprocess.DEVNULL, stderr=(self.folder / f"{name}.py-spy.log").open("wb"),
            )
        time.sleep(1.0)  # py-spy attaches in a few hundred ms; start measuring after it does

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(2)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


IDLE = ("EpollSelector.select", "KqueueSelector.select")
SCAFFOLD = ("<frozen runpy>", "driftwise/__main__.py", "driftwise/cli/", "typer/", "asyncio/runners.py",
            "asyncio/base_events.py", "asyncio/events.py", "uvicorn/server.py")


def summarise(path: Path, top: int) -> list[str]:
    """Top functions by inclusive and by own samples from py-spy's collapsed stacks (idle excluded)."""
    if not path.exists():
        return [f"  (no profile written: {path.name})"]
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            idle += n
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            if not any(s in frame for s in SCAFFOLD):
                inclusive[frame] += n
    if not total:
        return ["  (no busy samples)"]
    lines = [f"  {total} busy samples ({idle} in the event loop's select)", "  inclusive:"]
    for frame, n in inclusive.most_common(top):
        lines.append(f"    {100 * n / total:5.1f}%  {frame}")
    lines.append("  own:")
    for frame, n in own.most_common(top):
        lines.append(f"    {100 * n / total:5.1f}%  {frame}")
    return lines


@dataclasses.dataclass
class Measured:
    state: Path
    scenarios: list[str]
    latencies: list[float] = dataclasses.field(default_factory=list)
    server: list[float] = dataclasses.field(default_factory=list)
    verdict: list[float] = dataclasses.field(default_factory=list)
    per_stage: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    per_scenario: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    cpu: dict[str, float] = dataclasses.field(default_factory=lambda: defaultdict(float))
    actions: Counter[str] = dataclasses.field(default_factory=Counter)


async def measure(options: argparse.Namespace, state: Path) -> Measured:
    base_settings = Settings(log_level=options.log_level)
    settings = prepare_settings(base_settings, state_dir=state, port_base=free_port_block(ports_needed(base_settings)),
                                mode=options.mode)
    sink, close = file_sink(state / "processes.log")
    sandbox_args = ["--prometheus", options.prometheus]
    try:
        await asyncio.to_thread(ensure_keys, settings)
        specs = plan_system(settings, sandbox_paths=[ROOT / "scenarios"], sandbox_args=sandbox_args)
        for i, spec in enumerate(specs):
            if spec.name in (options.cprofile or []):
                # cProfile around the whole process; the profile is written when it exits on SIGTERM.
                out = state / f"{spec.name}.pstats"
                assert spec.argv[1:3] == ["-m", "driftwise"], spec.argv
                specs[i] = dataclasses.replace(spec, argv=[spec.argv[0], "-m", "driftwise.benchmarks.profiled",
                                                           str(out), *spec.argv[3:]])
        async with Supervisor(specs, sink=sink, ready_timeout_s=90.0) as supervisor, \
                httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
            client = SystemClient(http, Endpoints.from_settings(settings))
            listing = await client.scenarios()
            got = Measured(state, options.scenario or [s["id"] for s in listing["scenarios"]])
            profiler = Profiler(supervisor.pids(), state, options.rate, options.gil) if options.profile else None
            timeout = settings.drift.decision_deadline_s * 2 + 5
            for index, scenario in enumerate(got.scenarios):
                apps = await client.clones(scenario, options.events + options.warmup)
                notes = [a["notification"] for a in apps]
                for note in notes[: options.warmup]:  # lazy imports, sessions, caches
                    await one(client, note, timeout)
                if profiler is not None and index == 0:
                    await asyncio.to_thread(profiler.start)
                before = cpu_seconds(supervisor.pids())
                for note in notes[options.warmup: options.warmup + options.events]:
                    ms, decision = await one(client, note, timeout)
                    got.latencies.append(ms)
                    got.per_scenario[scenario].append(ms)
                    if "webhook_to_final" in decision.timings_ms:
                        got.server.append(decision.timings_ms["webhook_to_final"])
                    if "webhook_to_verdict" in decision.timings_ms:
                        got.verdict.append(decision.timings_ms["webhook_to_verdict"])
                    for stage, value in stages(decision).items():
                        got.per_stage[stage].append(value)
                    action = final_action(decision)
                    got.actions[action.value if action else "none"] += 1
                for name, used in cpu_seconds(supervisor.pids()).items():
                    got.cpu[name] += used - before.get(name, used)
            if profiler is not None:
                await asyncio.to_thread(profiler.stop)
    finally:
        close()
    return got


def report(options: argparse.Namespace, got: Measured) -> None:
    latencies, server, n = got.latencies, got.server, len(got.latencies)
    print(f"\nwebhook -> final, concurrency 1, {n} decisions over {len(got.scenarios)} scenario(s)")
    print(f"  client-observed: p50 {pct(latencies, 50):7.1f}  p95 {pct(latencies, 95):7.1f}  "
          f"p99 {pct(latencies, 99):7.1f}  mean {statistics.mean(latencies):7.1f} ms")
    if server:
        print(f"  agent-stamped:   p50 {pct(server, 50):7.1f}  p95 {pct(server, 95):7.1f}  "
              f"p99 {pct(server, 99):7.1f}  mean {statistics.mean(server):7.1f} ms")
    if got.verdict:
        print(f"  to the verdict:  p50 {pct(got.verdict, 50):7.1f}  p95 {pct(got.verdict, 95):7.1f}  "
              f"p99 {pct(got.verdict, 99):7.1f}  mean {statistics.mean(got.verdict):7.1f} ms (agent-stamped)")
    print("\nstage breakdown (ms)              p50     p95     p99    mean   runs")
    for stage in [*NODES, "checkpoints+graph", "intake+record"]:
        values = got.per_stage.get(stage)
        if values:
            print(f"  {stage:<28} {pct(values, 50):7.1f} {pct(values, 95):7.1f} {pct(values, 99):7.1f} "
                  f"{statistics.mean(values):7.1f} {len(values):6d}")
    if len(got.per_scenario) > 1:
        print("\nper scenario (client-observed ms)     p50     max")
        for scenario, values in got.per_scenario.items():
            print(f"  {scenario:<34} {pct(values, 50):7.1f} {max(values):7.1f}")
    print("\nCPU per decision (ms, user+system, all measured decisions)")
    for name, used in sorted(got.cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {used * 1000 / max(n, 1):7.1f}")
    print(f"  {'total':<16} {sum(got.cpu.values()) * 1000 / max(n, 1):7.1f}")
    print("  (the drift agent's figure includes the one long-poll GET per decision of this client)")
    print(f"\nfinal actions: {dict(got.actions)}")
    for path in sorted(got.state.glob("*.collapsed")):
        print(f"\nprofile {path.stem}:")
        print("\n".join(summarise(path, options.top)))
    for path in sorted(got.state.glob("*.pstats")):
        print(f"\ncProfile {path.stem} (whole process life, cumulative; own code and key libraries):")
        stats = pstats.Stats(str(path))
        stats.sort_stats("cumulative").print_stats(r"agents/|mcp_servers/|protocol/|driftwise/sandbox|aiosqlite|"
                                                   r"langgraph|sqlite|a2a/|mcp/|starlette|httpx", options.top)
    if options.json:
        Path(options.json).write_text(json.dumps({
            "latencies_ms": latencies, "server_ms": server, "stages": got.per_stage, "actions": got.actions,
            "cpu_ms_per_decision": {k: v * 1000 / max(n, 1) for k, v in got.cpu.items()},
        }, indent=1))
    print(f"p50_ms={pct(latencies, 50):.1f} p95_ms={pct(latencies, 95):.1f} p99_ms={pct(latencies, 99):.1f}")


def run(options: argparse.Namespace) -> int:
    state = Path(options.state or tempfile.mkdtemp(prefix="driftwise-breakdown-"))
    print(f"state and logs: {state}", file=sys.stderr)
    got = asyncio.run(measure(options, state))
    report(options, got)
    if not options.state and not options.profile and not options.cprofile and not options.keep:
        with contextlib.suppress(OSError):
            shutil.rmtree(state)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20, help="measured decisions per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured decisions per scenario first")
    parser.add_argument("--scenario", action="append", help="scenario id to clone (repeat; default: every one)")
    parser.add_argument("--mode", default=None, choices=["shadow", "advisory", "autonomous"])
    parser.add_argument("--prometheus", default="builtin", choices=["auto", "real", "builtin"])
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--profile", action="store_true", help="py-spy every process while measuring")
    parser.add_argument("--gil", action="store_true", help="py-spy samples only threads holding the GIL")
    parser.add_argument("--cprofile", action="append",
                        help="run this process (drift, security, sandbox, mcp-kubernetes...) under cProfile")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--state", help="state folder (kept); default a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    parser.add_argument("--json", help="write raw numbers here")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
