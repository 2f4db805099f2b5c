"""The evidence plan reads each drifted resource's evidence in that resource's own namespace."""

from __future__ import annotations

from agents.drift.evidence_plan import plan_evidence
from tests.reasoning.world import all_scenarios, now_of, report_for


def test_each_resource_is_judged_on_its_own_namespaces_evidence() -> None:
    s = next(s for s in all_scenarios() if s["id"].startswith("v01"))
    report = report_for(s)
    (drift,) = report.drifts
    home = drift.ref.namespace
    elsewhere = drift.model_copy(update={"ref": drift.ref.model_copy(update={"namespace": "elsewhere",
                                                                            "name": "other-api"})})
    plan = plan_evidence(report.model_copy(update={"drifts": [drift, elsewhere]}), now_of(s))
    traffic = {c.arguments["service"]: c.arguments["namespace"] for c in plan if c.tool == "workload_traffic"}
    assert traffic == {drift.ref.name: home, "other-api": "elsewhere"}
    managers = {c.arguments["name"]: c.arguments["namespace"] for c in plan if c.tool == "field_managers"}
    assert managers == {drift.ref.name: home, "other-api": "elsewhere"}
