"""Scenario files: every visible one loads; malformed ones fail naming file, path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from driftwise.sandbox.clone import clone_scenario
from driftwise.sandbox.errors import ScenarioError
from driftwise.sandbox.scenario import load_paths
from driftwise.sandbox.world import World
from tests.support.processes import SCENARIOS


def test_every_visible_scenario_loads_and_builds_a_world() -> None:
    scenarios = load_paths([SCENARIOS])
    assert len(scenarios) == len(list(SCENARIOS.glob("*.yaml"))) >= 12
    for s in scenarios:
        world = World.build([s])
        app = world.apps[s.application]
        # the scenario's managed resources are the ones that differ: the world must see them as drift
        assert app.application["status"]["sync"]["status"] == "OutOfSync", s.id
        assert all(app.resource_differs(r) for r in app.resources), s.id


def _write(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((SCENARIOS / "v01-payments-emergency-scale-up.yaml").read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [
        (lambda d: d["prometheus"]["series"][0].update(type="histogram"), "prometheus.series[0].type", "counter"),
        (lambda d: d["argocd"]["resources"][0].update(colour="red"), "argocd.resources[0].colour", "Extra"),
        (lambda d: d.update(now="2026-11-20T16:30:00"), "now", "time zone"),
        (lambda d: d["argocd"]["resources"][0].pop("target"), "argocd.resources[0].target", "required"),
        (lambda d: d.update(down=["mysql"]), "down[0]", "argocd"),
        (lambda d: d["prometheus"]["series"][0].update(points=[[0, 1], [-5, 2]]), "points", "increasing"),
    ],
)
def test_malformed_scenario_names_file_path_and_problem(tmp_path: Path, mutate, where: str, what: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, mutate)
    with pytest.raises(ScenarioError) as info:
        load_paths([path])
    message = str(info.value)
    assert str(path) in message and where in message and what in message, message


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_paths([path])


def test_clone_renames_every_identifier_consistently() -> None:
    base = next(s for s in load_paths([SCENARIOS]) if s.pagerduty.incidents)
    clone = clone_scenario(base, 7)
    assert clone.id == base.id + "-c0007"
    assert clone.application == base.application + "-c0007"
    base_ns = {r.namespace for r in base.argocd.resources}
    clone_ns = {r.namespace for r in clone.argocd.resources}
    assert clone_ns == {ns + "-c0007" for ns in base_ns}
    assert {s.labels["namespace"] for s in clone.prometheus.series} <= clone_ns
    assert {s.labels.get("service") for s in clone.prometheus.series} == {
        s.labels["service"] + "-c0007" for s in base.prometheus.series}
    svc_ids = {s["id"] for s in clone.pagerduty.services}
    assert svc_ids.isdisjoint({s["id"] for s in base.pagerduty.services})
    assert all(i["service"]["id"] in svc_ids for i in clone.pagerduty.incidents)
    assert clone.notification["app"] == clone.application
    assert clone.argocd.application["metadata"]["namespace"] == base.argocd.application["metadata"]["namespace"]
    assert clone.expect == base.expect
