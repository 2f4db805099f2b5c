"""Start Driftwise commands as real processes on loopback for tests, and stop them reliably.

Readiness is polled under a deadline (every wait is bounded); a process that exits or never
becomes ready fails the test with its own stderr, so a broken start-up names itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from driftwise.supervisor import free_port as free_port  # the product's own, re-exported for tests
from driftwise.supervisor import free_port_block as free_port_block

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"




class Proc:
    def __init__(self, popen: subprocess.Popen[bytes], name: str, log: Path) -> None:
        self.popen = popen
        self.name = name
        self.log = log

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds (or when `proc` dies) naming `what`."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited ({proc.popen.returncode}) before {what}:\n{proc.output()}")
        if predicate():
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    detail = f"\n{proc.name} output:\n{proc.output()}" if proc else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def http_ok(url: str, headers: dict[str, str] | None = None) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, headers=headers, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    return check


@contextmanager
def driftwise(
    *args: str,
    name: str,
    ready_url: str | None = None,
    ready_headers: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[Proc]:
    """Run `python -m driftwise.cli ARGS` as a process; yield once `ready_url` answers below 500."""
    log = Path(tempfile.mkstemp(prefix=f"dw-{name}-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "driftwise", *args], stdout=out, stderr=subprocess.STDOUT, env=full_env,
            cwd=ROOT, start_new_session=True,
        )
    proc = Proc(popen, name, log)
    try:
        if ready_url:
            wait_until(http_ok(ready_url, ready_headers), timeout, f"{name} ready at {ready_url}", proc)
        yield proc
    finally:
        proc.kill()
