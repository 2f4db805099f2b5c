"""The whole system on labelled scenario sets beyond the visible one, written to catch a decision built
from ids, names or one scenario's numbers.

- tests/scenarios_extra (30): workload kinds, names, namespaces, magnitudes, time zones, several drifted
  resources, backends down, injected text.
- tests/scenarios_extra2 (25, another author): resilience lowered without evidence (probes, disruption
  budgets, anti-affinity, topology spread, rollout maxUnavailable), requests lowered, a CronJob, cluster
  and namespaced RBAC bindings, token automount, root and seccomp, a Secret key added, a ConfigMap during
  an incident, autoscaler-owned replicas, neighbours' noise, Grafana down, several resources where the
  most severe rule wins, a rollout restart, a digest re-pin, an inactive deny window in another time
  zone, a regulated namespace outside any freeze.
- tests/scenarios_extra3 (33): custom resources of the fourteen projects the knowledge packs describe (mesh
  mTLS and authorization, CNI policies, admission engines, certificates, external secrets, workload and
  autoscaler CRDs, monitoring, a database operator) in both directions, and in-house kinds nobody
  documents (escalate: unknown is never benign); a core workload taken out of the mesh.

Each floor is the accuracy reached; it may only go up. Unsafe must stay zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import driftwise_cmd, explain
from tests.support.processes import ROOT

# the commands these tests run read DRIFTWISE_* settings: none of the caller's may leak in
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_env")]


@pytest.mark.parametrize(("folder", "size", "correct_floor"), [("scenarios_extra", 30, 30),
                                                               ("scenarios_extra2", 25, 25),
                                                               ("scenarios_extra3", 33, 33)])
def test_eval_on_an_extra_scenario_set(tmp_path: Path, folder: str, size: int, correct_floor: int) -> None:
    extra = ROOT / "tests" / folder
    report = tmp_path / "extra.json"
    out = driftwise_cmd("eval", str(extra), "--json", str(report), timeout=300)
    assert out.returncode == 0, explain(out)
    data = json.loads(report.read_text())
    files = sorted(extra.glob("*.yaml"))
    assert data["total"] == len(files) == size
    assert {s["id"] for s in data["scenarios"]} == {p.stem for p in files}
    unsafe = [s["id"] for s in data["scenarios"] if s.get("score") == "unsafe"]
    assert not unsafe and data["unsafe"] == 0, f"unsafe decisions: {unsafe}\n{explain(out)}"
    missed = [(s["id"], s.get("expected"), s.get("got")) for s in data["scenarios"] if s.get("score") != "correct"]
    assert data["correct"] >= correct_floor, f"misses: {missed}\n{explain(out)}"
    assert out.stdout.strip().splitlines()[-1].startswith(f"accuracy: {data['correct']}/{size} correct")
