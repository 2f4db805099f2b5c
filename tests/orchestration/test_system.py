"""The whole system through its commands: eval on the visible scenarios, the demo, the benchmark.

Each command starts every process itself (separate OS processes on a free port block, state in a
temp dir) and stops them all before it exits, so each test also checks that nothing is left over.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.cli import driftwise_cmd, explain
from tests.support.processes import ROOT, SCENARIOS

# the commands these tests run read DRIFTWISE_* settings: none of the caller's may leak in
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_env")]


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
    assert re.fullmatch(r"replicas=1 p50_ms=\d+\.\d p99_ms=\d+\.\d decisions_per_s=\d+\.\d\d "
                        r"cpu_ms_per_decision=\d+\.\d sign_p50_us=\d+\.\d", last), explain(out)
    data = json.loads(report.read_text())
    assert len(data["latencies_ms"]) == 20 and not data["failures"]
    assert set(data["peak_rss_mb"]) >= {"sandbox", "drift", "security", "compliance", "mcp-prometheus"}
    assert all(mb > 10 for mb in data["peak_rss_mb"].values())


def test_up_shows_readiness_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "DRIFTWISE_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "driftwise", "up", "--port-base", "0", "--sandbox", str(SCENARIOS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # bounded: the supervisor's own readiness deadline ends it sooner
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("webhook: "):
                break
        assert any("Driftwise is up" in line for line in seen), "".join(seen)
        children = psutil.Process(proc.pid).children()
        assert len(children) == 8
        assert (tmp_path / "state" / "keys" / "trust.json").is_file()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "every process stopped" in stderr
        assert re.search(r"^drift +\| ", stdout, re.MULTILINE), "child logs are prefixed with the process name"
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdout, proc.stderr):  # closed whatever happened: a leaked pipe fails the next test
            if stream is not None:
                stream.close()
        proc.wait(timeout=10)


def test_eval_llm_needs_an_endpoint() -> None:
    out = subprocess.run([sys.executable, "-m", "driftwise", "eval", str(SCENARIOS), "--reasoner", "llm"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={k: v for k, v in os.environ.items() if not k.startswith("DRIFTWISE_LLM")})
    assert out.returncode == 2 and "llm.base_url" in out.stderr, out.stderr


async def test_a_taken_port_moves_the_whole_system_to_a_new_block(tmp_path: Path) -> None:
    import socket

    import httpx

    from driftwise.settings import load_settings
    from driftwise.supervisor import free_port_block, local_system, ports_needed, prepare_settings

    settings = load_settings()
    base = free_port_block(ports_needed(settings))
    settings = prepare_settings(settings, state_dir=tmp_path, port_base=base)
    with socket.socket() as squatter:  # another program took the sandbox's port after we picked it
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        lines: list[str] = []
        async with local_system(settings, sandbox_paths=[SCENARIOS], sink=lambda n, line: lines.append(line),
                                sandbox_args=["--prometheus", "builtin"], move_ports_on_conflict=True) as system:
            moved = system.settings.argocd.url
            assert moved != settings.argocd.url and system.settings.drift.port != settings.drift.port
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{moved}/sandbox/healthz")).status_code == 200
                drift = f"http://127.0.0.1:{system.settings.drift.port}/healthz"
                assert (await http.get(drift)).status_code == 200
        assert any("moving every port" in line for line in lines)
