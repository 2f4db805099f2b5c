"""`driftwise up` on the real processes, with no mode configured: it runs shadow, so a drift the
guardrail would enforce writes nothing to Argo CD (the sandbox's write record stays empty); Ctrl-C
then stops the processes from the top down (drift agent first, sandbox last) with no traceback,
and the audit head is signed on the way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from driftwise.settings import load_settings
from driftwise.supervisor import free_port_block, ports_needed
from tests.support.processes import ROOT, SCENARIOS, wait_until

pytestmark = pytest.mark.slow


def _enforce_scenario() -> dict:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = yaml.safe_load(path.read_text())
        if scenario["expect"]["action"] == "enforce":
            return scenario
    raise AssertionError(f"no scenario in {SCENARIOS} expects enforce")


def test_up_without_a_mode_writes_nothing_and_ctrl_c_stops_in_order(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRIFTWISE_")}
    env.update({"DRIFTWISE_STATE_DIR": str(tmp_path / "state"), "DRIFTWISE_LOG_LEVEL": "warning",
                "PYTHONUNBUFFERED": "1"})
    base = free_port_block(ports_needed(load_settings()))
    sandbox, drift = f"http://127.0.0.1:{base}/sandbox", f"http://127.0.0.1:{base + 5}"
    log = Path(tempfile.mkstemp(prefix="dw-up-", suffix=".log", dir=tmp_path)[1])
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "driftwise", "up", "--sandbox", str(SCENARIOS),
                               "--port-base", str(base)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        wait_until(lambda: "Driftwise is up" in log.read_text(), 120, "driftwise up to be ready")
        output = log.read_text()
        assert "mode: shadow" in output and "generated bearer tokens" in output, output
        tokens = tmp_path / "state" / "tokens"
        webhook = {"Authorization": f"Bearer {(tokens / 'webhook').read_text().strip()}"}
        approvals = {"Authorization": f"Bearer {(tokens / 'approvals').read_text().strip()}"}

        scenario = _enforce_scenario()
        assert httpx.post(f"{sandbox}/scenarios/activate", json={"id": scenario["id"]}, timeout=10).status_code == 200
        httpx.delete(f"{sandbox}/writes", timeout=10)
        accepted = httpx.post(f"{drift}/v1/webhooks/argocd", json=scenario["notification"], headers=webhook,
                              timeout=10)
        assert accepted.status_code == 202, accepted.text
        event_id = accepted.json()["event_id"]
        decision = httpx.get(f"{drift}/v1/decisions/{event_id}", params={"wait": "30"}, headers=approvals,
                             timeout=40).json()
        assert decision["state"] in ("done", "failed") and decision["mode"] == "shadow", decision
        assert decision["verdict"]["verdict"]["action"] == "enforce", decision["verdict"]  # it would enforce
        writes = httpx.get(f"{sandbox}/writes", timeout=10).json()["writes"]
        print(f"writes to Argo CD with no mode configured, for a drift that would be enforced: {len(writes)}")
        assert writes == []
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    output = log.read_text()
    assert code == 0 and "every process stopped" in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output and "ERROR" not in output, output
    stops = [line.split("stopping ", 1)[1].strip() for line in output.splitlines() if "| stopping " in line]
    assert stops[0] == "drift" and stops[-1] == "sandbox", stops
    assert stops.index("security") < min(stops.index(f"mcp-{s}") for s in ("prometheus", "kubernetes")), stops
    # the drift agent signed the head as it stopped: the chain verifies against it
    from typer.testing import CliRunner

    from driftwise.cli import app

    verified = CliRunner().invoke(app, ["audit", "verify", "--db", str(tmp_path / "state" / "drift.sqlite")])
    assert verified.exit_code == 0 and '"checkpoint_seq": ' in verified.output, verified.output
