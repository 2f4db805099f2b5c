"""Custom resources: the knowledge packs, the scenarios of tests/scenarios_extra3 in process, and the invariant
that unknown is never benign (a property test through the rules, the real specialists and the guardrail policy)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.drift.guardrail import RegoEngine, default_policy_dir
from agents.drift.guardrail.opa_input import build_input
from agents.drift.reasoning.rules import decide
from agents.kit.knowledge import (
    DEFAULT_PACKS,
    Meaning,
    PackError,
    default_packs,
    is_builtin,
    load_packs,
    meanings,
)
from protocol.models import (
    Action,
    Domain,
    FieldChange,
    FindingKind,
    Recommendation,
    ResourceDrift,
    ResourcePaths,
    ResourceRef,
    Scope,
)
from tests.reasoning.helpers import EVENT, final_action, reasoning_input
from tests.reasoning.specialists import answers
from tests.reasoning.world import now_of

EXTRA3 = Path(__file__).resolve().parents[1] / "scenarios_extra3"
SCENARIOS = [yaml.safe_load(p.read_text()) for p in sorted(EXTRA3.glob("*.yaml"))]
PROJECTS = {"istio", "linkerd", "cilium", "calico", "kyverno", "gatekeeper", "cert-manager", "external-secrets",
            "argo-rollouts", "keda", "knative-serving", "prometheus-operator", "cloudnative-pg"}


@pytest.fixture(scope="module")
def engine() -> Iterator[RegoEngine]:
    e = RegoEngine(default_policy_dir())
    yield e
    e.close()


def _final(engine: RegoEngine, s: dict[str, Any], proposal: Recommendation,
           specialists: list[Recommendation]) -> tuple[str, bool]:
    """The guardrail policy's (action, requires_approval) for this proposal and these specialists."""
    inp = reasoning_input(s)
    opa = build_input(report=inp.report, proposal=proposal, accepted=specialists, discarded=[],
                      expected_specialists=[r.agent for r in specialists], missing_specialists=[],
                      threshold=0.8, now=inp.now, second_opinion=None)
    verdict = engine.evaluate_sync(opa)["result"]
    return verdict["action"], verdict["requires_approval"]


# --- the packs ------------------------------------------------------------------------------------


def test_a_pack_for_every_project_the_rubric_names() -> None:
    assert set(default_packs().projects()) >= PROJECTS


def test_every_pack_has_its_own_scenarios_and_an_in_house_kind_is_among_them() -> None:
    covered, unknown = set(), []
    for s in SCENARIOS:
        for r in s["argocd"]["resources"]:
            found = default_packs().lookup(r["group"], r["kind"])
            if found is not None:
                covered.add(found[0])
            elif not is_builtin(r["group"]):
                unknown.append(r["kind"])
    assert covered == set(default_packs().projects()) and unknown


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp


@pytest.mark.parametrize(("text", "problem"), [
    ("project: x\nresources: [{group: apps, kinds: [Deployment]}]\n", "Kubernetes' own"),
    ("project: x\nresources: [{group: a.io, kinds: [A], security: [{path: /spec/x}]}]\n", "exactly one of"),
    ("project: x\nresources: [{group: a.io, kinds: [A], security: [{path: /spec/x, items: by_action}]}]\n",
     "go together"),
    ("project: x\nresources: [{group: a.io, kinds: [A], colour: red}]\n", "colour"),
    ("project: x\nresources: [{group: a.io, kinds: [A]}\n", "cannot be read"),
])
def test_a_bad_pack_is_refused_naming_file_and_field(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(PackError, match=r"bad\.yaml") as err:
        load_packs(_write(tmp_path, "bad.yaml", text))
    assert problem in str(err.value)


def test_a_kind_described_twice_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "one.yaml", "project: one\nresources: [{group: a.io, kinds: [A], benign: [/spec/x]}]\n")
    _write(tmp_path, "two.yaml", "project: two\nresources: [{group: a.io, kinds: [A], benign: [/spec/y]}]\n")
    with pytest.raises(PackError, match=r"already described by .*one\.yaml"):
        load_packs(tmp_path)


def test_teaching_a_kind_is_one_file(tmp_path: Path) -> None:
    """README "Teach Driftwise a custom resource": one file in the packs directory makes a kind known."""
    for pack in DEFAULT_PACKS.glob("*.yaml"):
        (tmp_path / pack.name).write_text(pack.read_text())
    drift = _drift("platform.acme.internal", "TenantGuard", "/spec/mode", "strict", "relaxed")
    assert [m.meaning for m in meanings(drift, load_packs(tmp_path))] == [Meaning.UNCLASSIFIED]
    _write(tmp_path, "acme.yaml", "project: acme\nresources:\n  - group: platform.acme.internal\n"
                                  "    kinds: [TenantGuard]\n"
                                  "    security: [{path: /spec/mode, order: [strict, relaxed]}]\n")
    (m,) = meanings(drift, load_packs(tmp_path))
    assert m.meaning == Meaning.WEAKENED and m.pack == "acme"


def _drift(group: str, kind: str, path: str, before: Any, after: Any) -> ResourceDrift:
    def doc(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": "x"}}
        cur = out
        segs = path.strip("/").split("/")
        for seg in segs[:-1]:
            cur = cur.setdefault(seg, {})
        cur[segs[-1]] = value
        return out

    return ResourceDrift(ref=ResourceRef(group=group, kind=kind, namespace="ns", name="x"),
                         changes=[FieldChange(path=path, op="replace", before=before, after=after)],
                         target=doc(before), live=doc(after))


@pytest.mark.parametrize(("group", "kind", "path", "before", "after", "meaning"), [
    ("security.istio.io", "PeerAuthentication", "/spec/mtls/mode", "STRICT", "PERMISSIVE", Meaning.WEAKENED),
    ("security.istio.io", "PeerAuthentication", "/spec/mtls/mode", "DISABLE", "STRICT", Meaning.STRENGTHENED),
    ("security.istio.io", "PeerAuthentication", "/spec/mtls/mode", "STRICT", "BOGUS", Meaning.UNCLASSIFIED),
    ("kyverno.io", "ClusterPolicy", "/spec/validationFailureAction", "enforce", "Audit", Meaning.WEAKENED),
    ("constraints.gatekeeper.sh", "AnyConstraintKind", "/spec/enforcementAction", "deny", "warn", Meaning.WEAKENED),
    ("postgresql.cnpg.io", "Cluster", "/spec/instances", 3, 1, Meaning.CAPACITY),
    ("postgresql.cnpg.io", "Cluster", "/spec/postgresql/parameters/work_mem", "4MB", "8MB", Meaning.BENIGN),
    ("postgresql.cnpg.io", "Cluster", "/spec/somethingNew", 1, 2, Meaning.UNCLASSIFIED),
    ("cert-manager.io", "Certificate", "/spec/issuerRef/name", "a", "b", Meaning.WEAKENED),
])
def test_pack_directions(group: str, kind: str, path: str, before: Any, after: Any, meaning: Meaning) -> None:
    (m,) = meanings(_drift(group, kind, path, before, after), default_packs())
    assert m.meaning == meaning, m.detail


def test_list_directions_follow_the_policy_mode_and_each_rule_s_action() -> None:
    def authz(action: str, before: list[Any], after: list[Any]) -> Meaning:
        drift = _drift("security.istio.io", "AuthorizationPolicy", "/spec/rules", before, after)
        for side in (drift.target, drift.live):
            assert side is not None
            side["spec"]["action"] = action
        return meanings(drift, default_packs())[0].meaning

    assert authz("ALLOW", [{"from": [1]}], [{"from": [1]}, {}]) == Meaning.WEAKENED  # one more caller admitted
    assert authz("ALLOW", [{"from": [1]}, {}], [{"from": [1]}]) == Meaning.STRENGTHENED
    assert authz("DENY", [{"from": [1]}], [{"from": [1]}, {"from": [2]}]) == Meaning.STRENGTHENED  # denies more
    assert authz("DENY", [{"from": [1]}, {"from": [2]}], [{"from": [1]}]) == Meaning.WEAKENED

    def calico(before: list[Any], after: list[Any]) -> Meaning:
        return meanings(_drift("crd.projectcalico.org", "NetworkPolicy", "/spec/ingress", before, after),
                        default_packs())[0].meaning

    allow, deny = {"action": "Allow", "source": {"nets": ["0.0.0.0/0"]}}, {"action": "Deny"}
    assert calico([], [allow]) == Meaning.WEAKENED
    assert calico([deny], []) == Meaning.WEAKENED
    assert calico([], [deny]) == Meaning.STRENGTHENED
    assert calico([], [{"action": "Teleport"}]) == Meaning.UNCLASSIFIED


def test_a_kubernetes_kind_of_the_same_name_is_not_read_as_the_custom_one() -> None:
    """Calico's NetworkPolicy is judged by its pack, Kubernetes' by code: a Deny rule added is stricter."""
    drift = _drift("crd.projectcalico.org", "NetworkPolicy", "/spec/ingress", [], [{"action": "Deny"}])
    from agents.drift.reasoning.security import widening_findings

    assert widening_findings(drift, set()) == []


# --- the extra3 scenarios, in process, with and without the real specialists ------------------------


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
@pytest.mark.parametrize("with_specialists", [True, False], ids=["specialists", "alone"])
async def test_extra3_scenarios(s: dict[str, Any], with_specialists: bool) -> None:
    inp = reasoning_input(s)
    specialists = await answers(inp.report, inp.evidence) if with_specialists else []
    rec = decide(reasoning_input(s, specialists=specialists))
    assert final_action(rec) == s["expect"]["action"], rec.reasoning
    if s["expect"]["action"] == "escalate":
        # the reason names the kind, the paths and how to teach it
        kinds = {r["kind"] for r in s["argocd"]["resources"]}
        assert all(k in rec.reasoning for k in kinds) and "Teach Driftwise a custom resource" in rec.reasoning
        assert any(f.kind == FindingKind.UNCLASSIFIED for f in rec.findings)


def _unknown(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in SCENARIOS if s["id"].startswith(name)))


async def test_an_unreachable_specialist_s_name_changes_nothing() -> None:
    s = _unknown("z06")
    outcomes = {decide(reasoning_input(s, unreachable=[name])).action for name in ("security", "appsec", "x")}
    assert outcomes == {Action.ENFORCE}
    s = _unknown("z13")  # benign: an unreachable specialist of any name leaves the security view open
    outcomes = {decide(reasoning_input(s, unreachable=[name])).action for name in ("security", "appsec", "x")}
    assert outcomes == {Action.ESCALATE}


# --- unknown is never benign: a property over generated kinds and paths ------------------------------

_WORDS = ("mode", "enforcementAction", "validationFailureAction", "mtls", "action", "ingress", "egress",
          "privileged", "replicas", "instances", "workers", "policy", "level", "size", "enabled", "window")
_SEG = st.one_of(st.sampled_from(_WORDS), st.from_regex(r"[a-z][a-zA-Z]{1,9}", fullmatch=True))
_VALUE = st.one_of(st.integers(0, 64), st.booleans(),
                   st.sampled_from(["Enforce", "Audit", "STRICT", "PERMISSIVE", "deny", "dryrun", "Allow", "3"]))
_GROUP = st.one_of(
    st.from_regex(r"[a-z]{3,8}\.(acme|corp|example)\.(io|internal|com)", fullmatch=True),
    st.sampled_from(["cilium.io", "kyverno.io", "cert-manager.io", "postgresql.cnpg.io", "keda.sh"]),
)
_KIND = st.from_regex(r"Zz[A-Z][a-z]{2,8}", fullmatch=True)  # no pack names a kind starting "Zz"
_CHANGE = st.tuples(st.lists(_SEG, min_size=1, max_size=3), _VALUE, _VALUE).filter(lambda t: t[1] != t[2])


def _set(doc: dict[str, Any], segs: list[str], value: Any) -> None:
    for seg in segs[:-1]:
        nxt = doc.get(seg)
        if not isinstance(nxt, dict):
            nxt = doc[seg] = {}
        doc = nxt
    doc[segs[-1]] = value


def _unknown_scenario(group: str, kind: str, changes: list[tuple[list[str], Any, Any]], spike: bool,
                      incident: bool) -> dict[str, Any]:
    """z26 (an in-house kind) turned into this kind, these changes, with tempting evidence (a spike, an incident)."""
    s = _unknown("z26")
    r = s["argocd"]["resources"][0]
    r["group"], r["kind"] = group, kind
    for side in ("target", "live"):
        r[side]["apiVersion"], r[side]["kind"], r[side]["spec"] = f"{group}/v1", kind, {}
    for segs, before, after in changes:
        _set(r["target"]["spec"], segs, before)
        _set(r["live"]["spec"], segs, after)
    app = s["argocd"]["application"]["metadata"]["name"]
    ns = s["argocd"]["application"]["spec"]["destination"]["namespace"]
    if spike:
        s["prometheus"] = {"series": [{"labels": {"__name__": "http_requests_total", "namespace": ns,
                                                  "service": r["name"], "code": "200"},
                                       "type": "counter", "points": [[-21600, 20], [-2000, 20], [-1800, 300],
                                                                     [0, 320]]}]}
    if incident:
        service = s["pagerduty"]["services"][0]
        s["pagerduty"]["incidents"] = [{"id": "QINC1", "incident_number": 1, "title": f"{app} degraded",
                                        "status": "triggered", "urgency": "high", "created_at": s["now"],
                                        "service": {"id": service["id"], "type": "service_reference"}}]
    return s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(group=_GROUP, kind=_KIND, changes=st.lists(_CHANGE, min_size=1, max_size=4), spike=st.booleans(),
       incident=st.booleans())
def test_unknown_kinds_are_never_allowed_nor_deferred_without_a_human(
        engine: RegoEngine, group: str, kind: str, changes: list[tuple[list[str], Any, Any]], spike: bool,
        incident: bool) -> None:
    s = _unknown_scenario(group, kind, changes, spike, incident)
    inp = reasoning_input(s)
    if not any(d.changes for d in inp.report.drifts):
        return  # the generated changes cancelled out: there is no drift to judge
    specialists = asyncio.run(answers(inp.report, inp.evidence))
    rec = decide(reasoning_input(s, specialists=specialists))
    # the rules' own answer, and the final one after the guardrail
    assert rec.action not in (Action.ALLOW, Action.DEFER), rec.reasoning
    action, needs_human = _final(engine, s, rec, specialists)
    assert action != "allow" and not (action == "defer" and not needs_human)
    # a hostile reasoner proposing a confident allow or defer is refused too (the specialists' findings)
    for hostile in (Action.ALLOW, Action.DEFER):
        paths = [ResourcePaths(ref=d.ref, paths=[c.path for c in d.changes]) for d in inp.report.drifts]
        proposal = Recommendation(event_id=EVENT, agent="drift", domain=Domain.OPERATIONAL, action=hostile,
                                  confidence=0.99, reasoning="looks harmless", created_at=now_of(s),
                                  scope=Scope(resources=paths, until=now_of(s), not_before=now_of(s)))
        action, needs_human = _final(engine, s, proposal, specialists)
        assert action not in ("allow", "defer") and needs_human, action


def test_the_readme_example_pack_loads_and_classifies(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Teach Driftwise a custom resource", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    packs = load_packs(_write(tmp_path, "acme-platform.yaml", example))
    assert meanings(_drift("platform.acme.internal", "TenantGuard", "/spec/mode", "strict", "disabled"),
                    packs)[0].meaning == Meaning.WEAKENED
    assert meanings(_drift("platform.acme.internal", "TenantGuard", "/spec/workers", 2, 5),
                    packs)[0].meaning == Meaning.CAPACITY
    assert meanings(_drift("platform.acme.internal", "TenantGuard", "/spec/colour", "a", "b"),
                    packs)[0].meaning == Meaning.UNCLASSIFIED
