"""The whole system on tests/scenarios_extra: 30 labelled scenarios beyond the visible set.

They vary what the visible set fixes (workload kinds, names, namespaces, magnitudes, time zones,
several drifted resources, backends down, injected text) so that a decision built from ids, names
or one scenario's numbers fails here. The floor below is the accuracy reached; it may only go up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestration.test_system import driftwise_cmd, explain
from tests.support.processes import ROOT

pytestmark = pytest.mark.slow

EXTRA = ROOT / "tests" / "scenarios_extra"
CORRECT_FLOOR = 30


def test_eval_on_the_extra_scenarios(tmp_path: Path) -> None:
    report = tmp_path / "extra.json"
    out = driftwise_cmd("eval", str(EXTRA), "--json", str(report), timeout=300)
    assert out.returncode == 0, explain(out)
    data = json.loads(report.read_text())
    files = sorted(EXTRA.glob("*.yaml"))
    assert data["total"] == len(files) == 30
    assert {s["id"] for s in data["scenarios"]} == {p.stem for p in files}
    unsafe = [s["id"] for s in data["scenarios"] if s.get("score") == "unsafe"]
    assert not unsafe and data["unsafe"] == 0, f"unsafe decisions: {unsafe}\n{explain(out)}"
    missed = [(s["id"], s.get("expected"), s.get("got")) for s in data["scenarios"] if s.get("score") != "correct"]
    assert data["correct"] >= CORRECT_FLOOR, f"misses: {missed}\n{explain(out)}"
    assert out.stdout.strip().splitlines()[-1].startswith(f"accuracy: {data['correct']}/30 correct")
