"""The whole system on tests/scenarios_extra2: 25 more labelled scenarios, by another author.

They cover what the first extra set does not: resilience lowered without evidence (probes, disruption
budgets, anti-affinity, topology spread, rollout maxUnavailable), requests lowered, a CronJob, cluster
and namespaced RBAC bindings, token automount, root and seccomp, a Secret key added, a ConfigMap
during an incident, autoscaler-owned replicas, neighbours' noise, Grafana down, several resources
where the most severe rule wins, a rollout restart, a digest re-pin, an inactive deny window in
another time zone and a regulated namespace outside any freeze.
The floor below is the accuracy reached; it may only go up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestration.test_system import driftwise_cmd, explain
from tests.support.processes import ROOT

pytestmark = pytest.mark.slow

EXTRA = ROOT / "tests" / "scenarios_extra2"
CORRECT_FLOOR = 25


def test_eval_on_the_extra2_scenarios(tmp_path: Path) -> None:
    report = tmp_path / "extra2.json"
    out = driftwise_cmd("eval", str(EXTRA), "--json", str(report), timeout=300)
    assert out.returncode == 0, explain(out)
    data = json.loads(report.read_text())
    files = sorted(EXTRA.glob("*.yaml"))
    assert data["total"] == len(files) == 25
    assert {s["id"] for s in data["scenarios"]} == {p.stem for p in files}
    unsafe = [s["id"] for s in data["scenarios"] if s.get("score") == "unsafe"]
    assert not unsafe and data["unsafe"] == 0, f"unsafe decisions: {unsafe}\n{explain(out)}"
    missed = [(s["id"], s.get("expected"), s.get("got")) for s in data["scenarios"] if s.get("score") != "correct"]
    assert data["correct"] >= CORRECT_FLOOR, f"misses: {missed}\n{explain(out)}"
    assert out.stdout.strip().splitlines()[-1].startswith(f"accuracy: {data['correct']}/25 correct")
