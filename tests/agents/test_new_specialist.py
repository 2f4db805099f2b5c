"""Adding a specialist the documented way: a new package on sys.path + one settings line, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from agents.kit.client import PeerClient
from protocol.models import Action, AnalysisRequest
from protocol.signing import Verifier
from tests.agents.scenario_reports import report_for
from tests.support.agents import make_keys, write_config
from tests.support.processes import ROOT, SCENARIOS, driftwise, free_port

pytestmark = pytest.mark.slow

PACKAGE = '''
from agents.kit import Skill, Specialist
from protocol.models import Action, AnalysisRequest, Domain, Recommendation


class CostSpecialist(Specialist):
    description = "Flags replica increases by their cost."
    domain = Domain.OPERATIONAL
    skills = (Skill(id="analyze-cost", name="Cost of a drift", description="replicas x price", tags=("cost",),
                    examples=("replicas went from 3 to 12",)),)

    async def analyze(self, request: AnalysisRequest) -> Recommendation:
        grown = [c for d in request.report.drifts for c in d.changes
                 if c.path == "/spec/replicas" and isinstance(c.after, int) and isinstance(c.before, int)
                 and c.after > c.before]
        if not grown:
            return self.abstain(request, "no replica increase")
        c = grown[0]
        return self.recommend(request, Action.ALLOW, 0.6, f"/spec/replicas {c.before} -> {c.after} costs more")


SPECIALIST = CostSpecialist
'''


async def test_a_throwaway_specialist_serves_and_answers(tmp_path: Path) -> None:
    pkg = tmp_path / "plugins" / "acme_cost"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    trust = make_keys(tmp_path, ("cost",))
    port = free_port()
    config = write_config(tmp_path / "settings.yaml", {  # the one line: specialists.cost
        "cost": {"module": "acme_cost", "port": port, "token": "cost-token", "kinds": ["Deployment"]},
    })
    env = {"DRIFTWISE_STATE_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(pkg.parent), str(ROOT)])}
    with driftwise("agent", "cost", "--config", str(config), name="agent-cost",
                   ready_url=f"http://127.0.0.1:{port}/healthz", env=env):
        path = SCENARIOS / "v01-payments-emergency-scale-up.yaml"
        request = AnalysisRequest(event_id="evt-cost", requester="drift", report=report_for(path, "evt-cost"))
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")).json()
            assert card["name"] == "cost" and card["skills"][0]["id"] == "analyze-cost" and card["signatures"]
            signed = await PeerClient(http).analyze(f"http://127.0.0.1:{port}", request, "cost-token", 5.0)
        rec = Verifier(trust=trust, audience="drift").verify_recommendation(signed.jws, "evt-cost")
        assert rec.agent == "cost" and rec.action == Action.ALLOW and "3 -> 12" in rec.reasoning


def test_missing_key_is_a_one_line_error_naming_the_fix(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "driftwise", "agent", "security", "--port", str(free_port())],
        env={**os.environ, "DRIFTWISE_STATE_DIR": str(tmp_path), "DRIFTWISE_SPECIALISTS__SECURITY__TOKEN": "t"},
        cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"driftwise keys generate --agent security --out {tmp_path}/keys --trust {tmp_path}/keys/trust.json" \
        in lines[0]


def test_unknown_agent_names_the_configured_ones(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "driftwise", "agent", "nosuch"],
        env={**os.environ, "DRIFTWISE_STATE_DIR": str(tmp_path)}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "compliance, security" in result.stderr

