"""Each scenario is its own world: a scenario whose application an earlier one used is not joined to it.

The drift agent keeps one open decision per application drift (a repeat joins it), so the evaluation runs
scenarios in rounds in which no application repeats, each on a fresh system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwise.evaluation import load_labelled, rounds
from tests.support.cli import driftwise_cmd, explain
from tests.support.processes import SCENARIOS

SPIKE = next(SCENARIOS.glob("v01-*.yaml"))


def _flat(scenario: dict[str, Any]) -> dict[str, Any]:
    """The same drift of the same application with no evidence behind it: flat traffic, no incident."""
    flat = json.loads(json.dumps(scenario))
    flat["id"] = "same-app-no-spike"
    for series in flat["prometheus"]["series"]:
        series["points"] = [[-21600, series["points"][0][1]], [0, series["points"][0][1]]]
    flat.pop("pagerduty", None)
    flat.pop("grafana", None)
    flat["expect"] = {"action": "defer", "acceptable": ["escalate"], "unsafe": ["allow"],
                      "why": "replicas raised with no evidence behind them (rule 6), whatever an earlier world said"}
    return flat


def _folder(tmp_path: Path) -> Path:
    spike = yaml.safe_load(SPIKE.read_text())
    folder = tmp_path / "same-app"
    folder.mkdir()
    (folder / "a-spike.yaml").write_text(yaml.safe_dump({**spike, "id": "same-app-spike"}, sort_keys=False))
    (folder / "b-no-spike.yaml").write_text(yaml.safe_dump(_flat(spike), sort_keys=False))
    return folder


def test_rounds_cut_where_an_application_repeats(tmp_path: Path) -> None:
    same = load_labelled(_folder(tmp_path))
    visible = load_labelled(SCENARIOS)
    assert [[s.id for s in batch] for batch in rounds(same)] == [["same-app-spike"], ["same-app-no-spike"]]
    assert [[s.id for s in batch] for batch in rounds(visible)] == [[s.id for s in visible]]
    # the spike scenario is v01's application: a cut before it, and one before its flat twin
    assert [[s.id for s in b] for b in rounds([*visible[:2], same[0], visible[2], same[1]])] == [
        [visible[0].id, visible[1].id], ["same-app-spike", visible[2].id], ["same-app-no-spike"]]


@pytest.mark.slow
@pytest.mark.usefixtures("isolated_env")
def test_the_same_drift_in_another_world_is_decided_on_that_world(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    out = driftwise_cmd("eval", str(_folder(tmp_path)), "--json", str(report), timeout=300)
    assert out.returncode == 0, explain(out)
    got = {s["id"]: s["got"] for s in json.loads(report.read_text())["scenarios"]}
    assert got == {"same-app-spike": "allow", "same-app-no-spike": "defer"}, explain(out)
