"""README's "Add a specialist agent" steps, run as written: its code conforms, and the example specialist's signed
answer reaches a decision.

The shell block after the `readme-steps: add-a-specialist` marker is executed line by line in a
scratch folder holding the checkout's `examples/` and `.venv`; the only changes are the ports
(`--port-base` on `up`, the README's 8680/8600 moved with it), so that the test never takes fixed ports.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from agents.kit import Specialist
from agents.kit.testing import check_conformance, drift, report, request
from driftwise.settings import load_settings
from driftwise.supervisor import free_port_block, ports_needed
from protocol.models import Action, AnalysisRequest, Decision
from protocol.signing import TrustStore, Verifier
from tests.support.processes import ROOT, wait_until

MARKER = "<!-- readme-steps: add-a-specialist"


def readme_steps() -> list[str]:
    """The commands of the block after the marker, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block is not None, "README lost its add-a-specialist steps"
    return [line for line in block.group(1).replace("\\\n", " ").splitlines() if line.strip()]


def readme_specialist() -> type[Specialist]:
    """The Python of README's step 1, as a module."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index("## Add a specialist agent"):], re.S)
    assert block is not None
    module = types.ModuleType("readme_cost")
    exec(compile(block.group(1), "README.md", "exec"), module.__dict__)
    return module.SPECIALIST


async def test_readme_s_shortened_specialist_works_as_shown() -> None:
    def deployment(replicas: int) -> dict:
        container = {"name": "api", "resources": {"requests": {"cpu": "500m"}}}
        return {"kind": "Deployment", "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}

    def ask(labels: dict[str, str]) -> AnalysisRequest:
        return request(report(drift("Deployment", "api", namespace="shop", target=deployment(2), live=deployment(4)),
                              namespace_labels={"shop": labels}))

    await check_conformance(readme_specialist(), agent="cost", abstains=ask({}),
                            recommends=ask({"cost-center": "retail"}))


@pytest.mark.slow
def test_readme_steps_get_the_example_specialists_signed_answer_into_a_decision(tmp_path: Path) -> None:
    steps = readme_steps()
    export, up, *calls = steps
    assert export.startswith("export ") and "driftwise up" in up and up.rstrip().split("#")[0].strip().endswith("&")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWISE_")}
    env.update({"PYTHONUNBUFFERED": "1", "DRIFTWISE_LOG_LEVEL": "warning"})
    exported = dict(pair.split("=", 1) for pair in shlex.split(export)[1:])
    settings = load_settings(tmp_path / exported["DRIFTWISE_CONFIG"])
    base = free_port_block(ports_needed(settings))
    command = up.split("#")[0].strip().removesuffix("&").strip() + f" --port-base {base}"
    log = Path(tempfile.mkstemp(prefix="dw-readme-up-", suffix=".log", dir=tmp_path)[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "-c", f"{export}\nexec {command}"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=tmp_path, start_new_session=True)
    try:
        wait_until(lambda: "Driftwise is up" in log.read_text() or proc.poll() is not None, 150,
                   "driftwise up to be ready")
        assert proc.poll() is None, log.read_text()
        assert f"cost 8603 -> {base + 8}" in log.read_text(), "up must say where --port-base moved the cost agent"
        moved = "\n".join(calls).replace("localhost:8680", f"localhost:{base}").replace(
            "localhost:8600", f"localhost:{base + 5}")
        done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{export}\n{moved}"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr + "\n" + log.read_text()[-4000:]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    decision = Decision.model_validate_json(done.stdout.strip().splitlines()[-1])
    trust = TrustStore.load(tmp_path / ".driftwise" / "keys" / "trust.json")
    [cost] = [s for s in decision.recommendations if s.recommendation.agent == "cost"]
    signed = Verifier(trust=trust, audience="drift").verify_recommendation(cost.jws, decision.event.event_id)
    assert signed.action == Action.ESCALATE and "requests x replicas" in signed.reasoning
    assert decision.verdict is not None and decision.verdict.verdict.action == Action.ESCALATE
    codes = {r.code: r.message for r in decision.verdict.verdict.reasons}
    assert "cost" in codes["policy.specialist_escalate"], codes
    assert decision.mode == "shadow" and all(not a.executed for a in decision.applied)
