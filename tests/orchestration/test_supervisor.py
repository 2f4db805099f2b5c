"""The supervisor over trivial children: readiness, prefixed logs, restart after a kill, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr

from driftwise.supervisor import (
    ProcessSpec,
    Readiness,
    StartError,
    State,
    Supervisor,
)
from tests.support.processes import ROOT, free_port

HERE = Path(__file__).parent
CHILD = str(HERE / "trivial_child.py")


def trivial(name: str, port: int) -> ProcessSpec:
    return ProcessSpec(name=name, argv=[sys.executable, CHILD, str(port)],
                       ready_url=f"http://127.0.0.1:{port}/healthz")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def until(predicate: Callable[[], bool], seconds: float) -> None:
    """Poll a condition on supervisor state, bounded (it has no event of its own to await)."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_starts_prefixes_logs_restarts_a_killed_child_and_stops_all() -> None:
    lines: list[tuple[str, str]] = []
    sup = Supervisor([trivial("alpha", free_port()), trivial("beta", free_port())],
                     sink=lambda n, line: lines.append((n, line)), ready_timeout_s=20, backoff_s=(0.1, 1.0))
    await sup.start()
    try:
        assert {c["name"]: c["state"] for c in sup.status()} == {"alpha": "ready", "beta": "ready"}
        assert ("alpha", "second line") in lines
        assert any(n == "beta" and "listening" in line for n, line in lines)
        first = sup.pids()
        os.kill(first["alpha"], signal.SIGKILL)
        await until(lambda: sup.children["alpha"].restarts == 1 and sup.children["alpha"].state is State.READY,
                    20)
        after = sup.pids()
        assert after["alpha"] != first["alpha"]
        assert after["beta"] == first["beta"]
        assert any(n == "supervisor" and "alpha exited" in line for n, line in lines)
    finally:
        await sup.stop()
    pids = [first["beta"], after["alpha"]]
    assert all(gone(p) for p in pids)
    assert {c["state"] for c in sup.status()} == {"stopped"}


@pytest.mark.slow
def test_sigterm_stops_every_child() -> None:
    ports = [free_port(), free_port()]
    # `with`: the pipes are closed afterwards (an unclosed one is a ResourceWarning, which fails the run)
    with subprocess.Popen([sys.executable, str(HERE / "supervise_trivial.py"), *map(str, ports)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # bounded by the supervisor's own 20 s readiness deadline
            pids = json.loads(line)
            assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids.values())
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            deadline = time.monotonic() + 5
            while not all(gone(p) for p in pids.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert all(gone(p) for p in pids.values()), pids
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.mark.slow
async def test_a_child_that_exits_at_start_is_named_with_its_output() -> None:
    bad = ProcessSpec(name="broken", argv=[sys.executable, "-c", "print('cannot bind: boom'); raise SystemExit(3)"],
                      ready_url=f"http://127.0.0.1:{free_port()}/healthz")
    good = trivial("fine", free_port())
    sup = Supervisor([good, bad], ready_timeout_s=20)
    with pytest.raises(StartError) as info:
        await sup.start()
    assert info.value.name == "broken"
    assert "exited with status 3" in str(info.value)
    assert "cannot bind: boom" in info.value.output
    assert all(gone(c.pid) for c in sup.children.values() if c.pid)


@pytest.mark.slow
async def test_a_child_never_ready_times_out_by_name() -> None:
    port = free_port()
    never = ProcessSpec(name="sleepy", argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                        ready_url=f"http://127.0.0.1:{port}/healthz", readiness=Readiness.ANSWERS)
    sup = Supervisor([never], ready_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(StartError, match="sleepy was not ready"):
        await sup.start()
    assert time.monotonic() - started < 10
    assert gone(sup.children["sleepy"].pid or 0)


@pytest.mark.slow
async def test_gives_up_after_bounded_restarts() -> None:
    # Ready at once (no URL), then dies every time: the supervisor must stop retrying and say so.
    dying = ProcessSpec(name="flaky", argv=[sys.executable, "-c", "import time; time.sleep(0.2)"])
    lines: list[tuple[str, str]] = []
    sup = Supervisor([dying], sink=lambda n, line: lines.append((n, line)), max_restarts=2, backoff_s=(0.05, 0.1))
    await sup.start()
    try:
        async with asyncio.timeout(20):
            await sup.failed.wait()
        assert sup.children["flaky"].state is State.FAILED
        assert any("giving up" in line for _, line in lines)
    finally:
        await sup.stop()


def test_n_drift_agent_replicas_get_ports_and_replica_ids_of_their_own_on_one_dsn(tmp_path: Path) -> None:
    from driftwise.settings import Settings
    from driftwise.supervisor import SupervisorError, plan_system, ports_needed, relocate, replica_name

    base = 20000
    single = relocate(Settings(state_dir=tmp_path), base)
    with pytest.raises(SupervisorError, match=r"need one PostgreSQL to share: set state\.dsn"):
        plan_system(single, replicas=3)
    settings = single.model_copy(update={"state": single.state.model_copy(
        update={"dsn": SecretStr("postgresql://u@127.0.0.1:5432/d")})})
    specs = {s.name: s for s in plan_system(settings, replicas=3)}
    drifts = [specs[replica_name(i)] for i in range(3)]
    ports = [int(s.argv[s.argv.index("--port") + 1]) for s in drifts]
    assert len(set(ports)) == 3 and max(ports) < base + ports_needed(settings, 3)  # inside the reserved block
    taken = {s.port for s in settings.specialists.values() if s.enabled} | {settings.drift.port}
    assert not (set(ports[1:]) & taken)
    ids = [json.loads(s.env["DRIFTWISE_DRIFT"])["replica_id"] for s in drifts]
    assert ids == ["drift", "drift-2", "drift-3"]
    assert all(json.loads(s.env["DRIFTWISE_STATE"])["dsn"] == "postgresql://u@127.0.0.1:5432/d" for s in drifts)
