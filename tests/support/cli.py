"""Run the driftwise command line as a test would, and explain its result when it fails."""

from __future__ import annotations

import subprocess
import sys

import psutil

from tests.support.processes import ROOT


def driftwise_cmd(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out = subprocess.run([sys.executable, "-m", "driftwise", *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"processes left running after `driftwise {args[0]}`: {left}"
    return out


def explain(out: subprocess.CompletedProcess[str]) -> str:
    return f"exit {out.returncode}\nstdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
