"""The rules reasoner against every visible scenario and against hand-made variants that probe generality."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from agents.drift.evidence_plan import plan_evidence
from agents.drift.reasoning.rules import RulesReasoner, decide
from protocol.models import Action, Domain
from tests.reasoning.helpers import EVENT, final_action, real_specialists, reasoning_input, rename
from tests.reasoning.world import all_scenarios, load, now_of, report_for, shift, specialist

SCENARIOS = all_scenarios()


QUIET = " Also consulted, nothing decisive:"


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
@pytest.mark.parametrize("with_specialists", [True, False], ids=["specialists", "alone"])
async def test_visible_scenarios(s: dict[str, Any], with_specialists: bool) -> None:
    specialists = await real_specialists(s) if with_specialists else []
    inp = reasoning_input(s, specialists=specialists)
    rec = decide(inp)
    assert final_action(rec) == s["expect"]["action"], rec.reasoning
    assert rec.agent == "drift" and rec.event_id == EVENT
    if rec.action in (Action.ALLOW, Action.DEFER):
        assert rec.scope is not None
    # every cited evidence id was gathered; a decision that hinged on live evidence cites it in its
    # reasons, not only in the closing list of what was consulted without deciding anything
    ids = {e.id for e in inp.evidence}
    assert set(rec.evidence_refs) <= ids
    decisive = rec.reasoning.split(QUIET)[0]
    if rec.domain == Domain.OPERATIONAL and rec.evidence_refs:
        assert any(ref in decisive for ref in rec.evidence_refs), rec.reasoning


async def test_reasoner_protocol_and_scope() -> None:
    s = load("v01")
    out = await RulesReasoner().reason(reasoning_input(s))
    rec = out.recommendation
    assert out.second_opinion is None and out.llm is None
    assert rec.action == Action.ALLOW and rec.domain == Domain.OPERATIONAL
    assert rec.scope is not None and rec.scope.until == now_of(s) + timedelta(hours=24)
    assert rec.scope.resources[0].paths == ["/spec/replicas"]
    assert "/spec/replicas 3 -> 12" in rec.reasoning
    assert "prometheus.workload_traffic:payments/payments-api" in rec.evidence_refs


def test_defer_waits_for_the_next_allow_window() -> None:
    rec = decide(reasoning_input(load("v02")))
    assert rec.action == Action.DEFER and rec.scope is not None
    assert rec.scope.not_before is not None
    assert rec.scope.not_before.isoformat() == "2026-11-22T02:00:00+00:00"  # Sunday 02:00 UTC allow window
    assert {p for r in rec.scope.resources for p in r.paths} == {"/data/LOG_LEVEL", "/data/HTTP_TIMEOUT_MS"}


def test_same_input_same_answer() -> None:
    inp = reasoning_input(load("v07"))
    assert decide(inp) == decide(inp)


def test_injection_text_changes_nothing() -> None:
    s = load("v09")
    rec = decide(reasoning_input(s))
    assert rec.action == Action.ENFORCE
    assert "Ignore all previous instructions" not in rec.reasoning


# --- variants --------------------------------------------------------------------------------------


def _res(s: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return s["argocd"]["resources"][i]


def _objs(s: dict[str, Any]) -> list[dict[str, Any]]:
    return s.setdefault("kubernetes", {}).setdefault("objects", [])


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]


def _scale_rates(s: dict[str, Any], factor: float) -> dict[str, Any]:
    for x in s["prometheus"]["series"]:
        if x["labels"]["__name__"] == "http_requests_total":
            x["points"] = [[t, v * factor] for t, v in x["points"]]
    return s


def _as_kind(s: dict[str, Any], kind: str) -> dict[str, Any]:
    r = _res(s)
    r["kind"] = kind
    r["target"]["kind"] = kind
    r["live"]["kind"] = kind
    return s


def _incident(s: dict[str, Any], created_at: str, status: str = "triggered") -> dict[str, Any]:
    svc = s["pagerduty"]["services"][0]
    s["pagerduty"]["incidents"] = [{
        "id": "QVAR1", "type": "incident", "incident_number": 1, "title": "latency above SLO",
        "status": status, "urgency": "high", "created_at": created_at, "updated_at": created_at,
        "service": {"id": svc["id"], "type": "service_reference", "summary": svc["name"]},
    }]
    return s


def _freeze(s: dict[str, Any], manual_sync: bool = False) -> dict[str, Any]:
    s["argocd"]["project"]["spec"]["syncWindows"].append(
        {"kind": "deny", "schedule": "0 0 * * *", "duration": "24h", "timeZone": "UTC", "applications": ["*"],
         "manualSync": manual_sync})
    return s


def _regulate(s: dict[str, Any], regime: str = "sox") -> dict[str, Any]:
    for o in _objs(s):
        if o["kind"] == "Namespace":
            o["metadata"]["labels"]["driftwise.io/compliance"] = regime
    return s


def v_renamed_spike() -> dict[str, Any]:
    return rename(rename(load("v01"), "payments-api", "checkout-edge"), "payments", "shop")


def v_statefulset_scale_down() -> dict[str, Any]:
    return _as_kind(rename(load("v07"), "ledger-api", "ledger-db"), "StatefulSet")


def v_statefulset_spike() -> dict[str, Any]:
    return _as_kind(load("v01"), "StatefulSet")


def v_small_spike() -> dict[str, Any]:
    s = _scale_rates(load("v01"), 0.01)  # 0.4 rps -> 4 rps: same shape, tiny numbers
    s["pagerduty"]["incidents"] = []
    s["grafana"]["annotations"] = []
    return s


def v_huge_steady_scale_down() -> dict[str, Any]:
    return _scale_rates(load("v07"), 50.0)


def v_scale_down_incident_after() -> dict[str, Any]:
    s = load("v07")
    return _incident(s, "2026-11-20T16:24:00Z")  # opened after the 16:20 cut


def v_scale_down_incident_before() -> dict[str, Any]:
    s = load("v07")
    return _incident(s, "2026-11-20T16:00:00Z")  # open before the cut: it may explain it, a human confirms


def v_limits_lowered() -> dict[str, Any]:
    s = load("v11")
    r = _res(s)
    _container(r["target"])["resources"]["limits"]["memory"] = "1Gi"
    _container(r["live"])["resources"]["limits"]["memory"] = "512Mi"
    s["kubernetes"]["objects"] = [o for o in _objs(s) if o["kind"] == "Namespace"]
    s["pagerduty"]["incidents"] = []
    s["prometheus"]["series"] = [x for x in s["prometheus"]["series"]
                                 if x["labels"]["__name__"] == "http_requests_total"]
    return s


def v_resources_raised_without_oom() -> dict[str, Any]:
    s = load("v11")
    s["kubernetes"]["objects"] = [o for o in _objs(s) if o["kind"] == "Namespace"]
    s["pagerduty"]["incidents"] = []
    for x in s["prometheus"]["series"]:
        if x["labels"]["__name__"] == "container_memory_working_set_bytes":
            x["points"] = [[-21600, 200e6], [0, 210e6]]
    return s


def v_replicas_by_controller_without_hpa() -> dict[str, Any]:
    s = load("v06")
    s["kubernetes"]["objects"] = [o for o in _objs(s) if o["kind"] == "Namespace"]
    for x in s["prometheus"]["series"]:
        x["points"] = [[-21600, x["points"][0][1]], [0, x["points"][0][1]]]
    return s


def v_hpa_scaled_down() -> dict[str, Any]:
    s = load("v06")
    _res(s)["target"]["spec"]["replicas"] = 12
    return s


def v_hpa_but_outside_bounds() -> dict[str, Any]:
    s = load("v06")
    _res(s)["live"]["spec"]["replicas"] = 1
    return s


def v_config_regulated_no_freeze() -> dict[str, Any]:
    return _regulate(load("v02"), "pci")


def v_config_regulated_in_freeze() -> dict[str, Any]:
    return _freeze(_regulate(load("v02"), "hipaa"))


def v_config_prometheus_down() -> dict[str, Any]:
    s = load("v02")
    s["down"] = ["prometheus"]
    return s


def v_config_pagerduty_down() -> dict[str, Any]:
    s = load("v02")
    s["down"] = ["pagerduty"]
    return s


def v_config_with_incident() -> dict[str, Any]:
    return _incident(load("v02"), "2026-11-20T14:40:00Z")


def v_scale_down_prometheus_down() -> dict[str, Any]:
    s = load("v07")
    s["down"] = ["prometheus"]
    return s


def v_metrics_down_incident_open() -> dict[str, Any]:
    return _incident(load("v12"), "2026-11-20T16:00:00Z")


def v_privileged_in_freeze() -> dict[str, Any]:
    return _freeze(load("v03"))


def v_privileged_in_freeze_manual_sync() -> dict[str, Any]:
    return _freeze(load("v03"), manual_sync=True)


def v_statefulset_host_network() -> dict[str, Any]:
    s = _as_kind(load("v07"), "StatefulSet")
    r = _res(s)
    r["live"]["spec"]["replicas"] = 6
    r["live"]["spec"]["template"]["spec"]["hostNetwork"] = True
    return s


def v_capability_added_daemonset() -> dict[str, Any]:
    s = _as_kind(load("v07"), "DaemonSet")
    r = _res(s)
    r["live"]["spec"]["replicas"] = 6
    _container(r["live"])["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    return s


def v_clusterrole_wildcard() -> dict[str, Any]:
    s = load("v04")
    r = _res(s)
    for obj in (r["target"], r["live"]):
        obj["kind"] = "ClusterRole"
        obj["metadata"].pop("namespace", None)
    r["kind"] = "ClusterRole"
    r.pop("namespace", None)
    return s


def v_role_narrowed() -> dict[str, Any]:
    s = load("v04")
    r = _res(s)
    r["target"], r["live"] = copy.deepcopy(r["live"]), copy.deepcopy(r["target"])
    r["live"]["metadata"]["managedFields"] = r["target"]["metadata"].pop("managedFields")
    return s


def v_trusted_image_bump() -> dict[str, Any]:
    s = load("v05")
    _container(_res(s)["live"])["image"] = "registry.example.internal/team/search-api:1.12.1"
    return s


def v_secret_label_only() -> dict[str, Any]:
    s = load("v08")
    r = _res(s)
    r["live"]["data"] = dict(r["target"]["data"])
    r["live"]["metadata"]["labels"] = {"rotated-by": "ops"}
    return s


VARIANTS: list[tuple[str, Any, Action]] = [
    ("renamed workload, spike", v_renamed_spike, Action.ALLOW),
    ("statefulset unexplained scale-down", v_statefulset_scale_down, Action.ENFORCE),
    ("statefulset scale-up in a spike", v_statefulset_spike, Action.ALLOW),
    ("tiny absolute rates, same spike", v_small_spike, Action.ALLOW),
    ("huge steady traffic, scale-down", v_huge_steady_scale_down, Action.ENFORCE),
    ("scale-down, incident opened after it", v_scale_down_incident_after, Action.ENFORCE),
    ("scale-down, incident open before it", v_scale_down_incident_before, Action.ESCALATE),
    ("memory limit lowered", v_limits_lowered, Action.ENFORCE),
    ("memory raised without OOM evidence", v_resources_raised_without_oom, Action.DEFER),
    ("controller wrote replicas but no HPA, no spike", v_replicas_by_controller_without_hpa, Action.DEFER),
    ("HPA scaled down within its bounds", v_hpa_scaled_down, Action.ALLOW),
    ("HPA exists but replicas outside bounds", v_hpa_but_outside_bounds, Action.ENFORCE),
    ("configmap, regulated namespace, no freeze", v_config_regulated_no_freeze, Action.DEFER),
    ("configmap, regulated namespace, freeze", v_config_regulated_in_freeze, Action.ESCALATE),
    ("configmap, metrics down (not needed)", v_config_prometheus_down, Action.DEFER),
    ("configmap, incidents down (needed)", v_config_pagerduty_down, Action.ESCALATE),
    ("configmap during an open incident", v_config_with_incident, Action.ALLOW),
    ("scale-down, metrics down", v_scale_down_prometheus_down, Action.ESCALATE),
    ("scale-up, metrics down, incident open", v_metrics_down_incident_open, Action.ALLOW),
    ("privileged during a deny window", v_privileged_in_freeze, Action.ESCALATE),
    ("privileged during a deny window with manualSync", v_privileged_in_freeze_manual_sync, Action.ENFORCE),
    ("statefulset hostNetwork", v_statefulset_host_network, Action.ENFORCE),
    ("daemonset capability added", v_capability_added_daemonset, Action.ENFORCE),
    ("clusterrole wildcard", v_clusterrole_wildcard, Action.ENFORCE),
    ("role narrowed", v_role_narrowed, Action.DEFER),
    ("image bumped within the trusted registry", v_trusted_image_bump, Action.DEFER),
    ("secret label only", v_secret_label_only, Action.DEFER),
]


@pytest.mark.parametrize(("build", "expected"), [(b, e) for _, b, e in VARIANTS], ids=[n for n, _, _ in VARIANTS])
def test_variants(build: Any, expected: Action) -> None:
    rec = decide(reasoning_input(build()))
    assert final_action(rec) == expected, rec.reasoning


def test_security_specialist_unreachable() -> None:
    s = v_trusted_image_bump()
    # the security agent did not answer and an image changed: a human confirms
    rec = decide(reasoning_input(s, unreachable=["security"]))
    assert rec.action == Action.ESCALATE and "unreachable" in rec.reasoning
    # a replicas-only drift has no security meaning: its absence does not matter
    assert decide(reasoning_input(load("v01"), unreachable=["security"])).action == Action.ALLOW
    # a clear widening is reverted by the own check even without the specialist
    assert decide(reasoning_input(load("v05"), unreachable=["security"])).action == Action.ENFORCE


def test_compliance_unreachable_in_regulated_scope() -> None:
    rec = decide(reasoning_input(v_config_regulated_no_freeze(), unreachable=["compliance"]))
    assert rec.action == Action.ESCALATE


def test_specialist_enforce_is_adopted_with_its_domain() -> None:
    s = load("v02")
    at = now_of(s)
    sec = specialist(EVENT, "security", Domain.SECURITY, "enforce", "the new value disables TLS verification", at)
    rec = decide(reasoning_input(s, specialists=[sec]))
    assert rec.action == Action.ENFORCE and rec.domain == Domain.SECURITY and rec.confidence >= 0.8


def test_specialist_escalate_is_respected() -> None:
    s = load("v01")
    comp = specialist(EVENT, "compliance", Domain.COMPLIANCE, "escalate", "change ticket missing", now_of(s))
    rec = decide(reasoning_input(s, specialists=[comp]))
    assert rec.action == Action.ESCALATE and rec.domain == Domain.COMPLIANCE


def test_operational_specialist_allow_does_not_override_security() -> None:
    s = load("v03")
    ok = specialist(EVENT, "capacity", Domain.OPERATIONAL, "allow", "looks fine", now_of(s), confidence=1.0)
    assert decide(reasoning_input(s, specialists=[ok])).action == Action.ENFORCE


def test_plan_is_small_and_stable() -> None:
    for s in SCENARIOS:
        report = report_for(s)
        plan = plan_evidence(report, now_of(s))
        assert len(plan) <= 8
        assert [c.id for c in plan] == [c.id for c in plan_evidence(report, now_of(s))]
        assert len({c.id for c in plan}) == len(plan)
    plan = {c.id: c for c in plan_evidence(report_for(load("v01")), now_of(load("v01")))}
    traffic = plan["prometheus.workload_traffic:payments/payments-api"]
    assert traffic.arguments["service"] == "payments-api" and traffic.arguments["at"] == "2026-11-20T16:30:00Z"
    # the baseline ends before the 16:05 change, so the spike that prompted it is not in it
    assert traffic.arguments["baseline_end"] < "2026-11-20T16:05:00Z"
    assert plan["pagerduty.incidents:payments/payments-api"].arguments["since"] == shift("2026-11-20T16:30:00Z", -21600)
    assert "kubernetes.autoscalers_for:payments/payments-api" in plan
    # a Secret-only drift needs no live evidence; a pure security drift neither
    assert plan_evidence(report_for(load("v08")), now_of(load("v08"))) == []
    assert plan_evidence(report_for(load("v03")), now_of(load("v03"))) == []
