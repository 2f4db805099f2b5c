"""Round-2 generality: resilience lowered (spreading, rollouts), token automount, pod security, LB/Ingress access.

The rules reasoner on typed inputs built from tests/scenarios_extra2 and hand-made variants of them,
plus the security specialist's rule file on the same drifts. Every variant flips one field, so that
a decision keyed to a name, a magnitude or one scenario's shape fails here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.drift.reasoning.changes import classify
from agents.drift.reasoning.rules import decide
from agents.drift.reasoning.security import widening_findings
from agents.security.rules import evaluate, load_rules
from protocol.models import Action
from tests.reasoning.helpers import final_action, real_specialists, reasoning_input
from tests.reasoning.world import report_for

EXTRA2 = Path(__file__).resolve().parents[1] / "scenarios_extra2"
SCENARIOS = [yaml.safe_load(p.read_text()) for p in sorted(EXTRA2.glob("*.yaml"))]


def _load(prefix: str) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in SCENARIOS if s["id"].startswith(prefix)))


def _live(s: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return s["argocd"]["resources"][i]["live"]


def _target(s: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return s["argocd"]["resources"][i]["target"]


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _action(s: dict[str, Any]) -> Action:
    return final_action(decide(reasoning_input(s)))


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
@pytest.mark.parametrize("with_specialists", [True, False], ids=["specialists", "alone"])
async def test_extra2_scenarios(s: dict[str, Any], with_specialists: bool) -> None:
    specialists = await real_specialists(s) if with_specialists else []
    rec = decide(reasoning_input(s, specialists=specialists))
    assert final_action(rec) == s["expect"]["action"], rec.reasoning


# --- resilience: how the classification reads spreading and rollouts ------------------------------


def _deltas(s: dict[str, Any], what: str) -> list[Any]:
    return [d for d in classify(report_for(s).drifts[0]).deltas if d.what == what]


def test_anti_affinity_removed_weakened_added() -> None:
    s = _load("y03")
    (d,) = _deltas(s, "spreading")
    assert not d.up and d.path == "/spec/template/spec/affinity/podAntiAffinity"
    anti = _pod(_target(s))["affinity"]["podAntiAffinity"]
    _pod(_live(s))["affinity"] = {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": anti["requiredDuringSchedulingIgnoredDuringExecution"][0]}]}}
    (d,) = _deltas(s, "spreading")
    assert not d.up  # required -> preferred is weaker
    assert _action(s) == Action.ENFORCE
    s = _load("y03")
    s["argocd"]["resources"][0]["target"], s["argocd"]["resources"][0]["live"]["spec"] = \
        copy.deepcopy(_live(s)), copy.deepcopy(_target(s)["spec"])
    (d,) = _deltas(s, "spreading")
    assert d.up  # anti-affinity added by hand: resilience raised


@pytest.mark.parametrize("change, up", [
    ({"whenUnsatisfiable": "ScheduleAnyway"}, False),
    ({"maxSkew": 3}, False),
    ({"topologyKey": "kubernetes.io/hostname"}, False),  # the zone key is gone
    ({"maxSkew": 1}, None),  # the same constraint: no delta
])
def test_topology_spread_loosened(change: dict[str, Any], up: bool | None) -> None:
    s = _load("y04")
    constraint = copy.deepcopy(_pod(_target(s))["topologySpreadConstraints"][0])
    _pod(_live(s))["topologySpreadConstraints"] = [{**constraint, **change}]
    deltas = _deltas(s, "spreading")
    if up is None:
        assert deltas == []
    else:
        assert [d.up for d in deltas] == [up]


@pytest.mark.parametrize("target, live, up", [
    (0, "50%", False),
    ("50%", 0, True),
    ("25%", 1, None),  # 25% of 6 replicas rounds down to 1: the same
    (1, 3, False),
    (None, "100%", False),  # from Kubernetes' default 25%
])
def test_max_unavailable(target: Any, live: Any, up: bool | None) -> None:
    s = _load("y05")
    for obj, value in ((_target(s), target), (_live(s), live)):
        roll = obj["spec"]["strategy"]["rollingUpdate"]
        roll.pop("maxUnavailable")
        if value is not None:
            roll["maxUnavailable"] = value
    deltas = _deltas(s, "rollout")
    assert [d.up for d in deltas] == ([] if up is None else [up])
    if up is True:
        assert _action(s) == Action.DEFER  # more resilient, nothing justifies it, nothing lowered: rule 6
    elif up is False:
        assert _action(s) == Action.ENFORCE


def test_recreate_strategy_lowers_resilience() -> None:
    s = _load("y05")
    _live(s)["spec"]["strategy"] = {"type": "Recreate"}
    (d,) = _deltas(s, "rollout")
    assert not d.up and d.path == "/spec/strategy/type"
    assert _action(s) == Action.ENFORCE


def test_statefulset_update_strategy() -> None:
    s = _load("y04")
    _live(s)["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    _live(s)["spec"]["template"]["spec"]["topologySpreadConstraints"] = \
        _target(s)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    (d,) = _deltas(s, "rollout")
    assert not d.up  # default 1 -> 2
    assert _action(s) == Action.ENFORCE


def test_resilience_cut_during_an_incident_is_not_enforced_blindly() -> None:
    s = _load("y03")
    s["pagerduty"]["incidents"] = [{
        "id": "QX1", "type": "incident", "incident_number": 1, "title": "nodes flapping", "status": "triggered",
        "urgency": "high", "created_at": "2027-01-14T07:50:00Z", "updated_at": "2027-01-14T07:55:00Z",
        "service": {"id": s["pagerduty"]["services"][0]["id"], "type": "service_reference",
                    "summary": "session-gateway"}}]
    assert _action(s) == Action.ESCALATE  # a possible reason: a human confirms


# --- privilege and exposure: the drift agent's own check --------------------------------------------


def _own(s: dict[str, Any]) -> list[str]:
    report = report_for(s)
    return [f.rule_id for d in report.drifts for f in widening_findings(d, set())]


def test_service_account_token_automount() -> None:
    s = _load("y11")
    assert _own(s) == ["security.token_mount"]
    assert _action(s) == Action.ENFORCE
    _target(s)["automountServiceAccountToken"], _live(s)["automountServiceAccountToken"] = True, False
    assert _own(s) == []  # hardened by hand: nothing widened
    assert _action(s) == Action.DEFER


def _namespace_drift(levels: tuple[str | None, str | None]) -> dict[str, Any]:
    s = _load("y19")  # a benign ConfigMap drift, reused as the frame
    res = s["argocd"]["resources"][0]
    ns = res["namespace"]
    objs = []
    for level in levels:
        labels = {"kubernetes.io/metadata.name": ns}
        if level is not None:
            labels["pod-security.kubernetes.io/enforce"] = level
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    objs[1]["metadata"]["managedFields"] = [{"manager": "kubectl-label", "operation": "Update", "apiVersion": "v1",
                                             "time": "2027-02-08T10:30:00Z", "fieldsType": "FieldsV1",
                                             "fieldsV1": {"f:metadata": {"f:labels": {}}}}]
    s["argocd"]["resources"][0] = {"group": "", "version": "v1", "kind": "Namespace", "name": ns,
                                   "target": objs[0], "live": objs[1]}
    s.pop("down", None)
    return s


@pytest.mark.parametrize("levels, widened", [
    (("restricted", "privileged"), True),
    (("baseline", "privileged"), True),
    (("restricted", None), True),
    (("privileged", "restricted"), False),
    (("baseline", "baseline"), False),
])
def test_pod_security_level(levels: tuple[str | None, str | None], widened: bool) -> None:
    s = _namespace_drift(levels)
    assert (_own(s) == ["security.pod_security_lowered"]) is widened
    if levels[0] != levels[1]:
        assert _action(s) == (Action.ENFORCE if widened else Action.DEFER)


def _lb(s: dict[str, Any], target_ranges: list[str], live_ranges: list[str]) -> dict[str, Any]:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "locale-service", "namespace": "i18n"},
           "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 8443}]}}
    t, l_ = copy.deepcopy(svc), copy.deepcopy(svc)
    if target_ranges:
        t["spec"]["loadBalancerSourceRanges"] = target_ranges
    if live_ranges:
        l_["spec"]["loadBalancerSourceRanges"] = live_ranges
    l_["metadata"]["managedFields"] = [{"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1",
                                       "time": "2027-02-08T10:30:00Z", "fieldsType": "FieldsV1",
                                       "fieldsV1": {"f:spec": {"f:loadBalancerSourceRanges": {}}}}]
    s["argocd"]["resources"][0] = {"group": "", "version": "v1", "kind": "Service", "name": "locale-service",
                                   "namespace": "i18n", "target": t, "live": l_}
    return s


@pytest.mark.parametrize("target, live, widened", [
    (["10.0.0.0/8"], [], True),
    (["10.0.0.0/8"], ["10.0.0.0/8", "0.0.0.0/0"], True),
    (["10.0.0.0/8", "192.168.0.0/16"], ["10.0.0.0/8"], False),
])
def test_load_balancer_source_ranges(target: list[str], live: list[str], widened: bool) -> None:
    s = _lb(_load("y19"), target, live)
    assert bool(_own(s)) is widened
    assert (_action(s) == Action.ENFORCE) is widened


def test_ingress_allowlist_annotation_removed() -> None:
    s = _load("y19")
    ann = "nginx.ingress.kubernetes.io/whitelist-source-range"
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "admin", "namespace": "i18n", "annotations": {ann: "10.0.0.0/8"}},
           "spec": {"rules": [{"host": "admin.example.com"}]}}
    live = copy.deepcopy(ing)
    del live["metadata"]["annotations"][ann]
    s["argocd"]["resources"][0] = {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress",
                                   "name": "admin", "namespace": "i18n", "target": ing, "live": live}
    assert _own(s) == ["security.exposure"]
    assert _action(s) == Action.ENFORCE


def test_apparmor_unconfined() -> None:
    s = _load("y13")
    c_t = _pod(_target(s))["containers"][0]["securityContext"]
    c_l = _pod(_live(s))["containers"][0]["securityContext"]
    c_l["seccompProfile"] = c_t["seccompProfile"]
    c_l["appArmorProfile"] = {"type": "Unconfined"}
    assert _own(s) == ["security.seccomp"]
    assert _action(s) == Action.ENFORCE


# --- the security specialist's rule file sees the same widenings ----------------------------------


@pytest.mark.parametrize("build, rule_id", [
    (lambda: _load("y11"), "security.token-automount-enabled"),
    (lambda: _load("y13"), "security.syscall-filter-removed"),
    (lambda: _namespace_drift(("restricted", "privileged")), "security.pod-security-lowered"),
])
def test_specialist_rules_fire(build: Any, rule_id: str) -> None:
    hits = evaluate(load_rules(), report_for(build()))
    assert rule_id in {r.id for r, _ in hits}
    assert all(r.category == "privilege" for r, _ in hits if r.id == rule_id)


def test_specialist_rules_quiet_when_hardened() -> None:
    s = _namespace_drift(("privileged", "restricted"))
    assert not [r for r, _ in evaluate(load_rules(), report_for(s)) if r.id == "security.pod-security-lowered"]
