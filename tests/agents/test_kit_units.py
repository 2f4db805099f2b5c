"""Pure parts of the kit and the security rules: routing, pointers, rules data, degradation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agents.kit.deadline import Degradation, apply_degradations
from agents.kit.pointers import MISSING, get, matches, matching
from agents.kit.routing import wants
from agents.security.rules import ImageRef, RulesError, evaluate, load_rules
from protocol.models import Domain, DriftReport, FieldChange, Recommendation, ResourceDrift, ResourceRef
from tests.agents.scenario_reports import report_for
from tests.support.processes import SCENARIOS


def _report(kind: str, *paths: str, target: dict | None = None, live: dict | None = None) -> DriftReport:
    return DriftReport(
        event_id="e", application="a", project="p", observed_at=datetime(2026, 11, 20, tzinfo=UTC),
        drifts=[ResourceDrift(ref=ResourceRef(kind=kind, name="x", namespace="ns"),
                              changes=[FieldChange(path=p, op="replace") for p in paths], target=target, live=live)],
    )


def test_wants_routes_by_kind_and_path_globs() -> None:
    report = _report("Deployment", "/spec/template/spec/containers/0/securityContext/privileged")
    assert wants(["*"], ["*"], report)
    assert wants(["Deployment"], ["/spec/template/*"], report)
    assert not wants(["Secret", "Role"], ["*"], report)
    assert not wants(["*"], ["/spec/replicas"], report)
    assert not wants(["*"], ["*"], _report("Deployment").model_copy(update={"drifts": []}))


def test_pointer_globs() -> None:
    assert matches("/**/securityContext/privileged", "/spec/template/spec/containers/0/securityContext/privileged")
    assert matches("/data/**", "/data") and matches("/data/**", "/data/a~1b")
    assert not matches("/spec/*", "/spec/a/b")
    doc = {"a": [{"b": 1}], "c/d": 2}
    assert get(doc, "/a/0/b") == 1 and get(doc, "/c~1d") == 2 and get(doc, "/a/3") is MISSING
    assert matching("/a/*/b", doc) == ["/a/0/b"]


def test_image_references() -> None:
    assert ImageRef.parse("nginx").repository == "docker.io/library/nginx"
    r = ImageRef.parse("registry.example.internal:5000/team/app:1.2@sha256:abc")
    assert (r.registry, r.tag, r.digest) == ("registry.example.internal:5000", "1.2", "sha256:abc")


def _deploy(sc: dict, image: str = "reg.example/team/app:1", **spec: object) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image, "securityContext": sc}],
                                           **spec}}}}


@pytest.mark.parametrize(("live", "rule"), [
    (_deploy({"capabilities": {"add": ["NET_ADMIN"]}}), "security.capabilities-added"),
    (_deploy({}, hostNetwork=True), "security.host-namespace"),
    (_deploy({}, volumes=[{"name": "h", "hostPath": {"path": "/"}}]), "security.host-path-volume"),
    (_deploy({}, image="reg.example/other/app:1"), "security.image-untrusted-source"),
])
def test_rules_fire_on_widening(live: dict, rule: str) -> None:
    report = _report("Deployment", target=_deploy({}), live=live)
    assert rule in {f.rule_id for _, f in evaluate(load_rules(), report)}


def test_rules_fire_on_exposure_and_bindings() -> None:
    svc = _report("Service", target={"spec": {"type": "ClusterIP"}}, live={"spec": {"type": "LoadBalancer"}})
    assert {f.rule_id for _, f in evaluate(load_rules(), svc)} == {"security.service-exposed"}
    rb = _report("RoleBinding", target={"roleRef": {"kind": "Role", "name": "view"}},
                 live={"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}})
    assert "security.rbac-powerful-binding" in {f.rule_id for _, f in evaluate(load_rules(), rb)}


def test_narrowing_is_not_flagged() -> None:
    v04 = report_for(SCENARIOS / "v04-rbac-wildcard.yaml")
    d = v04.drifts[0]
    narrowed = d.model_copy(update={"target": d.live, "live": d.target})
    assert evaluate(load_rules(), v04.model_copy(update={"drifts": [narrowed]})) == []


def test_a_broken_rules_file_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("actions: {privilege: enforce}\nrules:\n  - id: x\n    category: privilege\n    severity: high\n"
                   "    paths: [/a]\n    when: {became: 1, left: 2}\n    message: m\n")
    with pytest.raises(RulesError, match="exactly one test"):
        load_rules(bad)


def test_degradation_lowers_confidence_and_names_the_dependency() -> None:
    rec = Recommendation(event_id="e", agent="security", domain=Domain.SECURITY, action="enforce",
                         confidence=0.95, reasoning="r", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    out = apply_degradations(rec, [Degradation("compliance", "no answer within 1.00s", 0.3)])
    assert out.confidence == pytest.approx(0.65) and "compliance: no answer within 1.00s" in out.reasoning
    assert apply_degradations(rec, []) is rec


def test_peer_failures_are_classified_by_type_not_by_digits_in_the_url() -> None:
    """A refused connection to port 34019 once read as "credentials refused" because the URL holds "401"."""
    from a2a.client.errors import AgentCardResolutionError

    from agents.kit.client import _classify
    from agents.kit.errors import PeerAuthError, PeerProtocolError, PeerUnreachable

    url = "http://127.0.0.1:34019"
    request = httpx.Request("GET", f"{url}/.well-known/agent-card.json")

    def wrapped(cause: Exception, message: str, status: int | None = None) -> Exception:
        try:
            raise AgentCardResolutionError(message, status_code=status) from cause
        except AgentCardResolutionError as exc:
            return exc

    refused = wrapped(httpx.ConnectError("All connection attempts failed", request=request),
                      f"Network communication error fetching agent card from {url}: All connection attempts failed")
    assert isinstance(_classify(url, refused), PeerUnreachable)
    for status, kind in ((401, PeerAuthError), (403, PeerAuthError), (500, PeerProtocolError)):
        response = httpx.Response(status, request=request)
        cause = httpx.HTTPStatusError("status", request=request, response=response)
        assert type(_classify(url, wrapped(cause, f"HTTP {status} from {url}", status))) is kind


def test_data_files_load_as_models_or_name_the_file_and_field(tmp_path: Path) -> None:
    from agents.compliance.policy import CompliancePolicy, PolicyError, load_policy

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_policy(empty) == CompliancePolicy()  # the compliance policy's defaults
    with pytest.raises(RulesError, match=r"security rules .*empty.yaml: "):
        load_rules(empty)  # security rules must name their rules
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: {not: [a list}\n")
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("rules: 3\n")
    with pytest.raises(RulesError, match=r"wrong.yaml: [a-z_.0-9]+: "):
        load_rules(wrong)
