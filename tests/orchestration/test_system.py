"""The whole system through its commands: eval on the visible scenarios, the demo, the benchmark.

Each command starts every process itself (separate OS processes on a free port block, state in a
temp dir) and stops them all before it exits, so each test also checks that nothing is left over.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.processes import ROOT, SCENARIOS

pytestmark = pytest.mark.slow


def driftwise_cmd(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out = subprocess.run([sys.executable, "-m", "driftwise", *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"processes left running after `driftwise {args[0]}`: {left}"
    return out


def explain(out: subprocess.CompletedProcess[str]) -> str:
    return f"exit {out.returncode}\nstdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"


def test_eval_on_the_visible_scenarios_is_all_correct(tmp_path: Path) -> None:
    report = tmp_path / "eval.json"
    out = driftwise_cmd("eval", str(SCENARIOS), "--json", str(report), timeout=240)
    assert out.returncode == 0, explain(out)
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "accuracy: 12/12 correct, 0 safe, 0 wrong, 0 unsafe", explain(out)
    data = json.loads(report.read_text())
    assert data["total"] == 12 and data["correct"] == 12
    assert {s["id"] for s in data["scenarios"]} == {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert "confusion matrix" in out.stdout


def test_eval_names_a_process_that_cannot_start(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    # A specialist whose package does not exist: its process exits at start, and eval must say which.
    config.write_text("specialists:\n  security:\n    module: agents.security\n    port: 8601\n"
                      "  ghost:\n    module: agents.no_such_agent\n    port: 8609\n")
    out = driftwise_cmd("eval", str(SCENARIOS), "--config", str(config), timeout=120)
    assert out.returncode != 0, explain(out)
    assert "ghost" in out.stderr and "eval could not run" in out.stderr, explain(out)
    assert "Traceback (most recent call last)" not in out.stderr.splitlines()[0]


def test_demo_decides_and_explains_both_drifts() -> None:
    out = driftwise_cmd("demo", "--port-base", "0", timeout=120)
    assert out.returncode == 0, explain(out)
    text = out.stdout
    for needle in ("the drift", "what each agent said", "guardrail", "final action", "/spec/replicas"):
        assert needle in text, f"{needle!r} missing\n{explain(out)}"
    assert "NOT verified" not in text, explain(out)
    assert "verified" in text
    done = text.strip().splitlines()[-1]
    assert "v01-payments-emergency-scale-up -> allow" in done, explain(out)
    assert "v02-configmap-environment-tuning -> defer" in done, explain(out)
    seconds = float(re.search(r"demo done in ([0-9.]+)s", done).group(1))  # type: ignore[union-attr]
    assert seconds < 60


def test_bench_prints_latency_and_throughput(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    out = driftwise_cmd("bench", "--events", "20", "--concurrency", "4", "--json", str(report), timeout=240)
    assert out.returncode == 0, explain(out)
    last = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"p50_ms=\d+\.\d p99_ms=\d+\.\d decisions_per_s=\d+\.\d\d", last), explain(out)
    data = json.loads(report.read_text())
    assert len(data["latencies_ms"]) == 20 and not data["failures"]
    assert set(data["peak_rss_mb"]) >= {"sandbox", "drift", "security", "compliance", "mcp-prometheus"}
    assert all(mb > 10 for mb in data["peak_rss_mb"].values())
